"""What goes into the SoftClust bundle: resources, weights, and what is trimmed out.

The PyInstaller spec (``softclust.spec``) and the build script (``build.py``) both use these
helpers, so the rules live in one place and are tested without running a build. Only the
standard library is imported here; the spec runs under PyInstaller's own interpreter state.

Destination names are bundle-relative POSIX paths, as in PyInstaller's TOC entries
(``torch/lib/libtorch_cuda.so``, ``resources/icons/softclust.png``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
APP_NAME = "SoftClust"
GUI_NAME = "SoftClust"
# Not plain "softclust": Windows and macOS file systems ignore case, so it would be the same
# file as the GUI executable "SoftClust" in the same folder.
CLI_NAME = "softclust-cli"
WEIGHTS_ENV = "SOFTCLUST_BUNDLE_WEIGHTS"  # os.pathsep-separated weights files for the spec

# torchvision's file names for the weights the app can use, by backbone; the first 8 hex
# digits after the dash are the start of the file's SHA-256. They must match
# softclust_gui.imaging.extractors.weights_file_name(), which a test checks.
WEIGHTS_FILES: dict[str, str] = {
    "mobilenet_v3_large": "mobilenet_v3_large-5c1a4163.pth",
    "resnet50": "resnet50-11ad3fa6.pth",
}
DEFAULT_BUNDLED_WEIGHTS = ("mobilenet_v3_large",)
_NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")

# Files of resources/ that are notes for developers, not for the app.
_RESOURCE_SKIP = ("README.md", "*.pyc", ".*")
_RESOURCE_SKIP_DIRS = ("__pycache__", "weights")

# Python packages the app never imports; some are in a development environment only (the
# benchmark extras, the test tools), others are optional imports of torch or scikit-learn
# that the app does not use (triton compiles kernels for torch.compile: about 0.9 GB).
# OPTIONAL_LEFT_OUT are optional extras the app can use but the bundle leaves out: the
# LiteRT extractor (the ``litert`` extra) is not offered by the frozen app.
OPTIONAL_LEFT_OUT: tuple[str, ...] = ("ai_edge_litert",)
EXCLUDED_MODULES: tuple[str, ...] = (
    "triton",
    "matplotlib",
    "skimage",
    "genieclust",
    "tkinter",
    "IPython",
    "pytest",
    "_pytest",
    "pytestqt",
    "PyInstaller",
    "Cython",
    # Not torch.testing._internal: torch.utils.checkpoint imports it when torchvision loads.
    "torch.utils.tensorboard",
    "tensorboard",
    # Qt: the app uses QtCore, QtGui and QtWidgets only.
    "PySide6.QtNetwork",
    "PySide6.QtQml",
    "PySide6.QtQuick",
    "PySide6.QtQuickWidgets",
    "PySide6.QtOpenGL",
    "PySide6.QtOpenGLWidgets",
    "PySide6.QtSql",
    "PySide6.QtTest",
    "PySide6.QtXml",
    "PySide6.QtHelp",
    "PySide6.QtDesigner",
    "PySide6.QtUiTools",
    "PySide6.QtConcurrent",
    "PySide6.QtDBus",
    "PySide6.QtPdf",
    "PySide6.QtPdfWidgets",
    "PySide6.QtSvg",
    "PySide6.QtSvgWidgets",
    "PySide6.QtPrintSupport",
    "PySide6.QtNetworkAuth",
    *OPTIONAL_LEFT_OUT,
)


@dataclass(frozen=True)
class TrimRule:
    """Bundle paths matching ``pattern`` (fnmatch, ``*`` crosses folders) are left out."""

    pattern: str
    reason: str


TRIM_RULES: tuple[TrimRule, ...] = (
    TrimRule("torch/include/*", "C++ headers, for building extensions only"),
    TrimRule("torch/share/*", "CMake files, for building extensions only"),
    TrimRule("torch/bin/test_*", "torch's C++ test programs (in the CPU wheels)"),
    TrimRule("torch/bin/protoc*", "protobuf compiler, for building only"),
    TrimRule("*/caffe2/*include*", "C++ headers"),
    TrimRule("nvidia/*/include/*", "CUDA headers"),
    TrimRule("nvidia/*.a", "static CUDA libraries, for linking only"),
    # CUDA libraries that no torch library names, neither as a dependency nor for dlopen:
    TrimRule("nvidia/*/libcusolverMg.so*", "multi-GPU solver, unused by torch"),
    TrimRule("nvidia/*/libnvrtc.alt.so*", "alternative NVRTC build, unused by torch"),
    TrimRule("nvidia/*/libnvrtc-builtins.alt.so*", "alternative NVRTC build, unused by torch"),
    TrimRule("nvidia/*/libnvblas.so*", "BLAS drop-in for other programs, unused by torch"),
    TrimRule("nvidia/*/libcufftw.so*", "FFTW drop-in for other programs, unused by torch"),
    TrimRule("nvidia/*/libcheckpoint.so*", "CUDA process checkpointing, unused by torch"),
    TrimRule("nvidia/*/libcufile_rdma.so*", "GPUDirect over InfiniBand, needs libibverbs"),
    TrimRule("nvidia/*/libnvperf_*", "profiler counters (CUPTI range profiling)"),
    TrimRule("nvidia/*/libpcsamplingutil.so*", "profiler PC sampling"),
    TrimRule("PySide6/Qt/translations/*", "Qt's translations; the app is in English only"),
    TrimRule("PySide6/translations/*", "Qt's translations; the app is in English only"),
    TrimRule("PySide6/Qt/qml/*", "Qt Quick modules, unused"),
)


def _matches(dest: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(dest.replace("\\", "/"), pattern)


def trim(
    entries: Iterable[tuple], rules: Sequence[TrimRule] = TRIM_RULES
) -> tuple[list[tuple], list[tuple[tuple, TrimRule]]]:
    """Split TOC-like ``entries`` (dest name first) into those kept and those trimmed.

    Returns
    -------
    kept : list of tuple
        The entries no rule matches, in their order.
    dropped : list of (entry, rule)
        Each trimmed entry with the first rule that matched it.
    """
    kept: list[tuple] = []
    dropped: list[tuple[tuple, TrimRule]] = []
    for entry in entries:
        rule = next((r for r in rules if _matches(entry[0], r.pattern)), None)
        if rule is None:
            kept.append(entry)
        else:
            dropped.append((entry, rule))
    return kept, dropped


def resource_datas(resources: Path = RESOURCES) -> list[tuple[str, str]]:
    """The ``(source file, bundle folder)`` pairs that ship ``resources`` under ``resources/``.

    Developer notes (README.md), caches and the ``weights/`` folder are left out: weights
    are added by ``weights_datas`` from an explicit choice, never from whatever lies there.

    Raises
    ------
    FileNotFoundError
        When ``resources`` is not a folder, or ``icons/softclust.png`` is missing from it.
    """
    if not resources.is_dir():
        raise FileNotFoundError(f"The resources folder {resources} does not exist.")
    icon = resources / "icons" / "softclust.png"
    if not icon.is_file():
        raise FileNotFoundError(
            f"The app icon {icon} is missing; run packaging/make_icons.py to render it."
        )
    pairs = []
    for folder, dirs, files in os.walk(resources):
        dirs[:] = sorted(d for d in dirs if d not in _RESOURCE_SKIP_DIRS)
        rel = Path(folder).relative_to(resources)
        for name in sorted(files):
            if any(fnmatch.fnmatch(name, pat) for pat in _RESOURCE_SKIP):
                continue
            pairs.append(
                (str(Path(folder) / name), str(PurePosixPath("resources", *rel.parts)))
            )
    return pairs


@dataclass(frozen=True)
class WeightsChoice:
    """One weights file going into the bundle as ``resources/weights/<file_name>``."""

    backbone: str
    source: Path
    origin: str  # "given" or "hub cache"

    @property
    def file_name(self) -> str:
        return WEIGHTS_FILES[self.backbone]


def _backbone_of(path: Path) -> str:
    for backbone, file_name in WEIGHTS_FILES.items():
        if path.name == file_name:
            return backbone
    raise ValueError(
        f"Cannot tell which network the weights file {path.name!r} is for. Name it as "
        f"torchvision does ({', '.join(WEIGHTS_FILES.values())}) or write NAME=FILE with "
        f"NAME one of {', '.join(WEIGHTS_FILES)}."
    )


def parse_weights_arg(text: str) -> tuple[str, Path]:
    """``[NAME=]FILE`` from the command line into ``(backbone, path)``; the file must exist.

    Raises
    ------
    ValueError
        When NAME is not a known backbone or FILE's name does not say which one it is.
    FileNotFoundError
        When FILE does not exist.
    """
    name, sep, file_text = text.partition("=")
    if not sep:
        name, file_text = "", text
    path = Path(file_text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"The weights file {path} does not exist; check the path.")
    if name and name not in WEIGHTS_FILES:
        raise ValueError(
            f"Unknown network {name!r} in {text!r}; use one of {list(WEIGHTS_FILES)}."
        )
    return (name or _backbone_of(path)), path


def choose_weights(
    given: Sequence[str], hub_checkpoints: Path | None
) -> tuple[list[WeightsChoice], list[str]]:
    """Pick the weights to bundle: the files given, else the default ones in the hub cache.

    Parameters
    ----------
    given
        ``[NAME=]FILE`` texts from ``--weights`` (see ``parse_weights_arg``).
    hub_checkpoints
        torch's ``hub.get_dir()/checkpoints`` folder, or None to not look there.

    Returns
    -------
    choices : list of WeightsChoice
        One per backbone, given files first.
    notes : list of str
        What was not found, in words for the builder (empty when everything was found).
    """
    choices: dict[str, WeightsChoice] = {}
    for text in given:
        backbone, path = parse_weights_arg(text)
        choices[backbone] = WeightsChoice(backbone, path, "given")
    notes = []
    if not given:
        for backbone in DEFAULT_BUNDLED_WEIGHTS:
            file_name = WEIGHTS_FILES[backbone]
            candidate = hub_checkpoints / file_name if hub_checkpoints else None
            if candidate is not None and candidate.is_file():
                choices[backbone] = WeightsChoice(backbone, candidate, "hub cache")
            else:
                where = f" in {hub_checkpoints}" if hub_checkpoints else ""
                notes.append(
                    f"No {backbone} weights ({file_name}) given with --weights or found"
                    f"{where}: the bundle is built without them, and the app uses its "
                    "weights-free colour-texture descriptor unless the user names a file."
                )
    return list(choices.values()), notes


def weights_datas(choices: Iterable[WeightsChoice], staging: Path) -> list[tuple[str, str]]:
    """Copy each choice to ``staging`` under torchvision's file name; pairs for the spec.

    The bundled file takes the name the app looks for (``resources/weights/<file_name>``),
    whatever the source file was called. A hard link is used where the file system allows.
    """
    staging.mkdir(parents=True, exist_ok=True)
    pairs = []
    for choice in choices:
        target = staging / choice.file_name
        if target.exists():
            target.unlink()
        try:
            os.link(choice.source, target)
        except OSError:
            _copy(choice.source, target)
        pairs.append((str(target), "resources/weights"))
    return pairs


def _copy(source: Path, target: Path) -> None:
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)


def sha256_prefix_matches(path: Path) -> bool:
    """True when the file's SHA-256 starts with the hex digits torchvision puts in its name."""
    stem = path.name.split(".", 1)[0]
    expected = stem.rsplit("-", 1)[-1]
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest().startswith(expected)


def nvidia_dlopen_libs(site_packages: Iterable[Path]) -> list[tuple[str, str]]:
    """CUDA libraries that torch's CUDA libraries load by name at run time (``dlopen``).

    PyInstaller follows the libraries a binary links against, not those it opens later.
    NVRTC (linked by ``libtorch_cuda``) opens ``libnvrtc-builtins`` whenever it compiles a
    kernel, as torch does for some element-wise operations on the GPU. Returns
    ``(source, bundle folder)`` pairs; empty where the CUDA libraries come with torch itself
    (Windows) or are absent (CPU builds, macOS).
    """
    pairs = []
    for site in site_packages:
        for lib in sorted(Path(site).glob("nvidia/*/lib/libnvrtc-builtins.so.*")):
            if ".alt." in lib.name:
                continue
            pairs.append((str(lib), lib.parent.relative_to(site).as_posix()))
    return pairs


def app_version(root: Path = ROOT) -> str:
    """``softclust_gui.__version__``, read from the source without importing the app."""
    for line in (root / "softclust_gui" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise ValueError(f"No __version__ line in {root / 'softclust_gui' / '__init__.py'}.")


def loaded_by_path_libs(package: str = "torchvision") -> list[tuple[str, str]]:
    """Native libraries of ``package`` that it loads by file path, not by ``import``.

    torchvision loads its operators (``_C_stable``: ``nms`` and the other ops the models
    register with torch) and its image codecs (``image_stable``) with
    ``torch.ops.load_library``, which PyInstaller's import analysis cannot see. Returns
    ``(source, bundle folder)`` pairs for the libraries at the top of the package folder;
    empty when the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations)))
    return [
        (str(lib), package)
        for lib in sorted(folder.iterdir())
        if lib.is_file() and lib.suffix in _NATIVE_SUFFIXES
    ]


def build_stamp(bundle: Path) -> Path:
    """The file ``build.py`` writes beside a finished bundle (``SoftClust.build.json``).

    A bundle folder without it may be half written by a build that is still running.
    """
    return bundle.with_name(f"{bundle.stem}.build.json")
