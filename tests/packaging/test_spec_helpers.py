"""What the spec collects: resources, weights where the frozen app looks, trimming, names."""

from __future__ import annotations

import ast
import io
import mmap
import sys
from pathlib import Path

import entry
import make_icons
import numpy as np
import pytest
import report_size
import softclust_bundle as sb
from PIL import Image

from softclust_gui import __version__, paths
from softclust_gui.imaging import extractors

MOBILENET = "mobilenet_v3_large"


def _write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -- resources ---------------------------------------------------------------------------


def test_resource_datas_ship_the_real_icons_and_desktop_file_but_not_the_notes():
    pairs = {
        (Path(src).relative_to(sb.RESOURCES).as_posix(), dest)
        for src, dest in sb.resource_datas()
    }
    assert ("icons/softclust.png", "resources/icons") in pairs
    assert ("icons/softclust.svg", "resources/icons") in pairs
    assert ("softclust.desktop", "resources") in pairs
    assert not any(rel.endswith("README.md") for rel, _ in pairs)


def test_resource_datas_keep_the_folder_layout_and_leave_out_weights_and_caches(tmp_path):
    res = tmp_path / "resources"
    _write(res / "icons" / "softclust.png")
    _write(res / "sample-flight" / "DCIM" / "100MEDIA" / "DJI_0001.JPG")
    _write(res / "sample-flight" / "SOURCES.md")
    _write(res / "weights" / "mobilenet_v3_large-5c1a4163.pth")
    _write(res / "icons" / "__pycache__" / "x.pyc")
    _write(res / ".DS_Store")
    pairs = sorted(
        (Path(src).relative_to(res).as_posix(), dest) for src, dest in sb.resource_datas(res)
    )
    assert pairs == [
        ("icons/softclust.png", "resources/icons"),
        ("sample-flight/DCIM/100MEDIA/DJI_0001.JPG", "resources/sample-flight/DCIM/100MEDIA"),
        ("sample-flight/SOURCES.md", "resources/sample-flight"),
    ]


def test_resource_datas_refuse_a_folder_without_the_app_icon(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"softclust\.png is missing; run packaging/make_icons"
    ):
        sb.resource_datas(_write(tmp_path / "resources" / "softclust.desktop").parent)
    with pytest.raises(FileNotFoundError, match=r"resources folder .* does not exist"):
        sb.resource_datas(tmp_path / "nowhere")


# -- weights -----------------------------------------------------------------------------


def test_weights_file_names_are_the_ones_the_app_looks_for():
    for backbone, file_name in sb.WEIGHTS_FILES.items():
        assert extractors.weights_file_name(backbone) == file_name
    assert set(sb.DEFAULT_BUNDLED_WEIGHTS) <= set(extractors.BACKBONES)
    assert sb.DEFAULT_BUNDLED_WEIGHTS[0] == extractors.DEFAULT_EXTRACTOR


def test_parse_weights_arg_reads_name_from_the_argument_or_the_file_name(tmp_path):
    own = _write(tmp_path / "my model.pth")
    tv = _write(tmp_path / "resnet50-11ad3fa6.pth")
    assert sb.parse_weights_arg(f"{MOBILENET}={own}") == (MOBILENET, own)
    assert sb.parse_weights_arg(str(tv)) == ("resnet50", tv)
    with pytest.raises(
        ValueError, match=r"Cannot tell which network .*'my model\.pth'.*NAME=FILE"
    ):
        sb.parse_weights_arg(str(own))
    with pytest.raises(ValueError, match=r"Unknown network 'vgg16'"):
        sb.parse_weights_arg(f"vgg16={own}")
    with pytest.raises(FileNotFoundError, match=r"missing\.pth does not exist"):
        sb.parse_weights_arg(str(tmp_path / "missing.pth"))


def test_choose_weights_prefers_given_files_then_the_hub_cache_then_says_none(tmp_path):
    hub = tmp_path / "hub" / "checkpoints"
    given = _write(tmp_path / "given.pth")
    choices, notes = sb.choose_weights([f"{MOBILENET}={given}"], hub)
    assert [(c.backbone, c.source, c.origin) for c in choices] == [(MOBILENET, given, "given")]
    assert notes == []

    choices, notes = sb.choose_weights([], hub)
    assert choices == []
    assert len(notes) == 1
    assert "mobilenet_v3_large-5c1a4163.pth" in notes[0]
    assert "built without them" in notes[0] and "weights-free" in notes[0]

    cached = _write(hub / "mobilenet_v3_large-5c1a4163.pth")
    choices, notes = sb.choose_weights([], hub)
    assert [(c.source, c.origin) for c in choices] == [(cached, "hub cache")]
    assert notes == []


def test_bundled_weights_land_where_the_frozen_app_finds_them(tmp_path, monkeypatch):
    source = _write(tmp_path / "downloads" / "any name.pth", b"weights bytes")
    choice = sb.WeightsChoice(MOBILENET, source, "given")
    pairs = sb.weights_datas([choice], tmp_path / "work" / "weights")
    # Lay the pairs out as PyInstaller does in the bundle's library folder.
    meipass = tmp_path / "bundle" / "_internal"
    for src, dest in pairs:
        _write(meipass / dest / Path(src).name, Path(src).read_bytes())
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(meipass), raising=False)
    assert paths.is_frozen()
    found = extractors.find_weights(MOBILENET, download=False)
    assert found is not None
    assert found.origin == "bundled"
    assert found.path == meipass / "resources" / "weights" / "mobilenet_v3_large-5c1a4163.pth"
    assert found.path.read_bytes() == b"weights bytes"
    assert source.read_bytes() == b"weights bytes"  # the builder's file is left as it was


def test_sha256_prefix_tells_torchvision_files_from_others(tmp_path):
    import hashlib

    data = b"some state dict"
    prefix = hashlib.sha256(data).hexdigest()[:8]
    assert sb.sha256_prefix_matches(_write(tmp_path / f"resnet50-{prefix}.pth", data))
    assert not sb.sha256_prefix_matches(_write(tmp_path / "resnet50-11ad3fa6.pth", data))


def test_build_checks_weights_before_building(tmp_path):
    import build
    import torch
    import torchvision

    good = tmp_path / "mobilenet.pth"
    torch.save(torchvision.models.mobilenet_v3_large(weights=None).state_dict(), good)
    build.check_weights([sb.WeightsChoice(MOBILENET, good, "given")])
    bad = _write(tmp_path / "notes.pth", b"not a state dict")
    with pytest.raises(ValueError, match="could not be read as a torch state_dict"):
        build.check_weights([sb.WeightsChoice(MOBILENET, bad, "given")])
    with pytest.raises(ValueError, match="does not fit resnet50"):
        build.check_weights([sb.WeightsChoice("resnet50", good, "given")])


# -- trimming ----------------------------------------------------------------------------


def test_trim_drops_headers_translations_and_unused_cuda_but_keeps_what_torch_links():
    toc = [
        ("torch/include/ATen/Tensor.h", "/src/a", "DATA"),
        ("torch/lib/libtorch_cuda.so", "/src/b", "BINARY"),
        ("torch/bin/test_api", "/src/b2", "BINARY"),
        ("torch/bin/torch_shm_manager", "/src/b3", "BINARY"),
        ("nvidia/cu13/lib/libcusolverMg.so.12", "/src/c", "BINARY"),
        ("nvidia/cu13/lib/libcusolver.so.12", "/src/d", "BINARY"),
        ("nvidia/cu13/lib/libnvrtc.alt.so.13", "/src/e", "BINARY"),
        ("nvidia/cu13/lib/libnvrtc.so.13", "/src/f", "BINARY"),
        ("nvidia/cu13/lib/libnvrtc-builtins.so.13.0", "/src/g", "BINARY"),
        ("nvidia/cu13/lib/libcudart_static.a", "/src/h", "DATA"),
        ("PySide6/Qt/translations/qtbase_de.qm", "/src/i", "DATA"),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", "/src/j", "BINARY"),
        ("resources/icons/softclust.png", "/src/k", "DATA"),
    ]
    kept, dropped = sb.trim(toc)
    assert [e[0] for e in kept] == [
        "torch/lib/libtorch_cuda.so",
        "torch/bin/torch_shm_manager",
        "nvidia/cu13/lib/libcusolver.so.12",
        "nvidia/cu13/lib/libnvrtc.so.13",
        "nvidia/cu13/lib/libnvrtc-builtins.so.13.0",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "resources/icons/softclust.png",
    ]
    reasons = {e[0]: rule.reason for e, rule in dropped}
    assert reasons["nvidia/cu13/lib/libcusolverMg.so.12"] == "multi-GPU solver, unused by torch"
    assert "English" in reasons["PySide6/Qt/translations/qtbase_de.qm"]
    assert len(kept) + len(dropped) == len(toc)


def _nvidia_dir() -> Path | None:
    import torch

    candidate = Path(torch.__file__).resolve().parent.parent / "nvidia"
    return candidate if candidate.is_dir() else None


@pytest.mark.slow
def test_no_trimmed_cuda_library_is_named_by_torchs_libraries():
    """A library torch links or opens by name would break the bundle if trimmed."""
    nvidia = _nvidia_dir()
    if nvidia is None:
        pytest.skip("this torch has no NVIDIA CUDA libraries beside it (a CPU build)")
    site = nvidia.parent
    libs = [p for p in nvidia.glob("*/lib/*") if p.is_file()]
    _, dropped = sb.trim([(p.relative_to(site).as_posix(), str(p)) for p in libs])
    trimmed = [entry_ for entry_, _rule in dropped]
    assert trimmed, "the trim rules match no CUDA library of this torch"
    torch_libs = sorted((site / "torch" / "lib").glob("*.so*"))
    for entry_ in trimmed:
        soname = Path(entry_[0]).name.encode()
        if soname.endswith(b".a") or b"/include/" in entry_[0].encode():
            continue
        for lib in torch_libs:
            with lib.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                assert data.find(soname) < 0, f"{lib.name} names {soname.decode()}"


def test_nvidia_dlopen_libs_adds_nvrtc_builtins_but_not_the_alternative_build(tmp_path):
    site = tmp_path / "site-packages"
    _write(site / "nvidia" / "cu13" / "lib" / "libnvrtc-builtins.so.13.0")
    _write(site / "nvidia" / "cu13" / "lib" / "libnvrtc-builtins.alt.so.13.0")
    _write(site / "nvidia" / "cu13" / "lib" / "libnvrtc.so.13")
    assert sb.nvidia_dlopen_libs([site]) == [
        (str(site / "nvidia" / "cu13" / "lib" / "libnvrtc-builtins.so.13.0"), "nvidia/cu13/lib")
    ]
    assert sb.nvidia_dlopen_libs([tmp_path / "empty"]) == []


def test_torchvisions_operator_library_is_collected_by_path():
    """torchvision registers ``nms`` & co. from ``_C_stable``, which no import names."""
    import torchvision

    pairs = sb.loaded_by_path_libs("torchvision")
    folder = Path(torchvision.__file__).parent
    names = {Path(src).name for src, _ in pairs}
    assert any(name.startswith("_C") for name in names), sorted(
        p.name for p in folder.iterdir()
    )
    assert {dest for _, dest in pairs} == {"torchvision"}
    assert all(Path(src).parent == folder for src, _ in pairs)
    assert sb.loaded_by_path_libs("no_such_package_here") == []


def _imported_modules(package: Path) -> set[str]:
    names = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_the_app_imports_is_excluded_from_the_bundle():
    imported = _imported_modules(sb.ROOT / "softclust_gui")
    assert "PySide6.QtWidgets" in imported  # the walk sees the app's imports
    clashes = sorted(
        name
        for name in imported
        for excluded in set(sb.EXCLUDED_MODULES) - set(sb.OPTIONAL_LEFT_OUT)
        if name == excluded or name.startswith(excluded + ".")
    )
    assert clashes == [], f"the app imports modules the spec leaves out: {clashes}"


# -- names, versions, icons, size report -------------------------------------------------


def test_the_entry_script_and_the_spec_agree_on_the_cli_name():
    assert entry.CLI_NAME == sb.CLI_NAME
    assert sb.CLI_NAME.lower() != sb.GUI_NAME.lower()  # one folder on case-blind file systems
    assert sb.app_version() == __version__


def test_app_version_says_when_there_is_none(tmp_path):
    _write(tmp_path / "softclust_gui" / "__init__.py", b'"""No version."""\n')
    with pytest.raises(ValueError, match="No __version__ line"):
        sb.app_version(tmp_path)


def test_icons_exist_in_every_size_and_match_the_svg():
    icons = sb.RESOURCES / "icons"
    assert Image.open(icons / "softclust.png").size == (256, 256)
    assert Image.open(icons / "softclust-512.png").size == (512, 512)
    ico = Image.open(icons / "softclust.ico")
    assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    assert Image.open(icons / "softclust.icns").size == (1024, 1024)
    rendered = np.asarray(
        Image.open(io.BytesIO(make_icons.render_png(icons / "softclust.svg", 256))).convert(
            "RGBA"
        ),
        dtype=np.int16,
    )
    committed = np.asarray(Image.open(icons / "softclust.png").convert("RGBA"), dtype=np.int16)
    assert np.abs(rendered - committed).mean() < 2.0  # re-render after editing the SVG


def test_make_icons_refuses_a_file_that_is_not_svg(tmp_path):
    with pytest.raises(ValueError, match="not an SVG file Qt can read"):
        make_icons.render_png(_write(tmp_path / "icon.svg", b"<html></html>"), 64)


def test_report_size_splits_a_bundle_by_component_without_counting_links(tmp_path):
    bundle = tmp_path / "SoftClust"
    _write(bundle / "SoftClust", b"e" * 100)
    _write(bundle / "_internal" / "torch" / "lib" / "libtorch.so", b"t" * 3000)
    _write(bundle / "_internal" / "nvidia" / "cu13" / "lib" / "libcublas.so.13", b"n" * 2000)
    _write(bundle / "_internal" / "PySide6" / "Qt" / "lib" / "libQt6Core.so.6", b"q" * 1000)
    _write(bundle / "_internal" / "resources" / "weights" / "m.pth", b"w" * 500)
    _write(bundle / "_internal" / "libpython3.11.so.1.0", b"p" * 400)
    (bundle / "_internal" / "libtorch.so").symlink_to(
        bundle / "_internal/torch/lib/libtorch.so"
    )
    sizes = {c.name: (c.size, c.files) for c in report_size.measure(bundle)}
    assert sizes["torch"] == (3000, 1)
    assert sizes["nvidia (CUDA)"] == (2000, 1)
    assert sizes["Qt (PySide6)"] == (1000, 1)
    assert sizes["weights"] == (500, 1)
    assert sizes[report_size.OTHER] == (500, 2)
    table = report_size.format_table(report_size.measure(bundle), top=2)
    assert "total" in table and "torch/lib/libtorch.so" in table
    assert (
        report_size.component_of("SoftClust.app/Contents/Frameworks/torch/x")
        == report_size.OTHER
    )
    assert report_size.component_of("Contents/Frameworks/torch/lib/x.dylib") == "torch"


def test_report_size_says_when_there_is_no_bundle(tmp_path, capsys):
    assert report_size.main([str(tmp_path / "dist" / "SoftClust")]) == 1
    assert "No bundle at" in capsys.readouterr().err
