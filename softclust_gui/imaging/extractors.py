"""Feature extractors: CNN backbones from torchvision, and a weights-free fallback.

Backbones (penultimate-layer embeddings, each with its own weights' preprocessing):

- ``mobilenet_v3_large`` (the default, 1280-d): about 6x faster than ResNet-50 on a laptop
  CPU (87 vs 15 images/s here in channels_last), fast enough that decoding the JPEGs, not
  the network, sets the pace; its ImageNet features separate field scenes well.
- ``resnet50`` (2048-d): stronger features, for machines with a GPU.

Weights are looked for, in this order: a file the user names; the app's bundled
``resources/weights/``; torch's hub cache (``torch.hub.get_dir()/checkpoints``); a download
when the machine is online. When none is found, ``make_extractor`` logs a warning and
returns the ``colour-texture`` descriptor (a colour histogram, gradient statistics and
local binary patterns), whose ``identity.fallback`` is True and whose ``notice`` says why.

An optional ``litert-mobilenet_v1`` extractor runs an int8 MobileNet V1 ``.tflite``
embedding model through ``ai-edge-litert`` (the ``litert`` extra).

Torch is imported only when a torch extractor is built.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from softclust_gui import compute, paths
from softclust_gui.imaging.decode import Preprocess

logger = logging.getLogger(__name__)

DEFAULT_EXTRACTOR = "mobilenet_v3_large"
FALLBACK_EXTRACTOR = "colour-texture"
LITERT_EXTRACTOR = "litert-mobilenet_v1"
LITERT_WEIGHTS = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"

DownloadProgress = Callable[[int, int], None]  # (bytes done, bytes total or 0)


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    title: str
    weights_enum: str  # a torchvision weights enum member
    dim: int
    cpu_batch: int  # keeps one CPU batch under about 0.5 s, so cancelling stays prompt
    resize: int = 232  # the weights' own resize and crop, known without importing torch;
    crop: int = 224  # TorchvisionExtractor checks them against torchvision's transforms


BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet_v3_large": BackboneSpec(
        "mobilenet_v3_large",
        "MobileNetV3-Large",
        "MobileNet_V3_Large_Weights.IMAGENET1K_V2",
        1280,
        16,
    ),
    "resnet50": BackboneSpec(
        "resnet50",
        "ResNet-50",
        "ResNet50_Weights.IMAGENET1K_V2",
        2048,
        4,
    ),
}
EXTRACTOR_NAMES = (*BACKBONES, LITERT_EXTRACTOR, FALLBACK_EXTRACTOR)


@dataclass(frozen=True)
class ExtractorIdentity:
    """What produced a feature vector; its ``key()`` keys the feature cache.

    ``fallback`` is True when the weights-free descriptor stands in for a network whose
    weights were not found.
    """

    model: str
    weights: str
    weights_sha256: str
    preprocess: str
    dim: int
    origin: str
    fallback: bool = False

    def key(self) -> str:
        return f"{self.model}|{self.weights_sha256}|{self.preprocess}|{self.dim}"

    def describe(self) -> str:
        if self.fallback:
            return f"{self.model} (fallback: no network weights found)"
        return f"{self.model} ({self.weights}, {self.origin})"


class Extractor(Protocol):
    """Anything the pipeline can run: a preprocessing spec and a batched ``embed``."""

    identity: ExtractorIdentity
    preprocess: Preprocess
    batch_size: int
    device: str
    notice: str | None

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """(n, crop, crop, 3) uint8 RGB -> (n, dim) float32."""
        ...


@dataclass(frozen=True)
class WeightsSource:
    path: Path
    origin: str  # "user file", "bundled", "hub cache" or "download"


# -- weights lookup ---------------------------------------------------------------------


def _weights_enum(spec: BackboneSpec):
    import torchvision.models as tvm

    enum_name, member = spec.weights_enum.split(".")
    return getattr(getattr(tvm, enum_name), member)


def weights_file_name(name: str) -> str:
    """The file name torchvision uses for ``name``'s weights, e.g. ``resnet50-11ad3fa6.pth``."""
    return _weights_enum(BACKBONES[name]).url.rsplit("/", 1)[-1]


def weights_search_paths(name: str) -> list[tuple[Path, str]]:
    """The places, in order, where the weights of backbone ``name`` are looked for."""
    import torch

    file_name = weights_file_name(name)
    return [
        (paths.resources_dir() / "weights" / file_name, "bundled"),
        (Path(torch.hub.get_dir()) / "checkpoints" / file_name, "hub cache"),
    ]


def find_weights(
    name: str,
    user_file: str | os.PathLike | None = None,
    *,
    download: bool = True,
    on_download_progress: DownloadProgress | None = None,
) -> WeightsSource | None:
    """Find the weights of backbone ``name``: user file, bundled, hub cache, download.

    Raises
    ------
    FileNotFoundError
        When ``user_file`` is given but does not exist (a typo must not silently fall back).
    """
    if name not in BACKBONES:
        raise ValueError(
            f"no torchvision backbone named {name!r}; choose one of {list(BACKBONES)}"
        )
    if user_file is not None:
        path = Path(user_file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"The weights file {path} does not exist; check the path.")
        return WeightsSource(path, "user file")
    for path, origin in weights_search_paths(name):
        if path.is_file():
            return WeightsSource(path, origin)
    if download and _online():
        target = weights_search_paths(name)[1][0]
        try:
            _download(_weights_enum(BACKBONES[name]).url, target, on_download_progress)
        except OSError as exc:
            logger.warning("downloading %s weights failed: %s", name, exc)
            return None
        return WeightsSource(target, "download")
    return None


def _online(host: str = "download.pytorch.org", timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _download(url: str, target: Path, on_progress: DownloadProgress | None) -> None:
    """Download ``url`` to ``target`` through a temporary file; check the hash in its name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    expected = target.stem.rsplit("-", 1)[-1]
    digest = hashlib.sha256()
    logger.info("downloading %s to %s", url, target)
    with urllib.request.urlopen(url, timeout=30) as response:
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            try:
                while chunk := response.read(1 << 20):
                    tmp.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, total)
            except BaseException:
                Path(tmp.name).unlink(missing_ok=True)
                raise
    if not digest.hexdigest().startswith(expected):
        Path(tmp.name).unlink(missing_ok=True)
        raise OSError(f"downloaded file does not match its hash prefix {expected}")
    os.replace(tmp.name, target)


_hash_memo: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256 (remembered per path, size, mtime)."""
    info = path.stat()
    memo_key = (str(path), info.st_size, info.st_mtime_ns)
    if memo_key not in _hash_memo:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
        _hash_memo[memo_key] = digest.hexdigest()[:16]
    return _hash_memo[memo_key]


# -- torchvision backbones --------------------------------------------------------------


def load_backbone(name: str, weights_path: Path):
    """Build backbone ``name``, load a state_dict from ``weights_path``, drop its classifier.

    Raises
    ------
    ValueError
        When the file is not a state_dict for this architecture.
    """
    import torch
    import torchvision.models as tvm

    model = getattr(tvm, name)(weights=None)
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"The weights file {weights_path} could not be read as a torch state_dict ({exc})."
        ) from exc
    if (
        isinstance(state, dict)
        and "state_dict" in state
        and isinstance(state["state_dict"], dict)
    ):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(
            f"The weights file {weights_path} holds a {type(state).__name__}, "
            f"not a state_dict of {name}."
        )
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"The weights file {weights_path} does not fit {name}: "
            f"{len(result.missing_keys)} missing keys (e.g. {result.missing_keys[:2]}) and "
            f"{len(result.unexpected_keys)} unexpected keys "
            f"(e.g. {result.unexpected_keys[:2]}). "
            f"Use a torchvision {name} state_dict such as {weights_file_name(name)}."
        )
    # Penultimate layer: drop the last linear layer of the classifier.
    if name == "resnet50":
        model.fc = torch.nn.Identity()
    else:
        model.classifier[-1] = torch.nn.Identity()
    return model.eval()


class TorchvisionExtractor:
    """A torchvision backbone run in inference mode: fp16 on a GPU, channels_last always.

    Parameters
    ----------
    name : str
        A key of ``BACKBONES``.
    weights : WeightsSource
        Where its weights come from (see ``find_weights``).
    device : str
        "auto", "cpu", "cuda" or "mps", resolved by ``compute.resolve_device``.
    """

    notice: str | None = None
    # Torch threads while embedding on the CPU; None keeps torch's setting. The pipeline
    # lowers it so that decoding threads and the model do not fight for the same cores.
    cpu_threads: int | None = None

    def __init__(self, name: str, weights: WeightsSource, device: str = "auto"):
        import torch

        spec = BACKBONES[name]
        self.device = compute.resolve_device(device)
        self._half = self.device == "cuda"
        transform = _weights_enum(spec).transforms()
        self.preprocess = Preprocess(
            resize=int(transform.resize_size[0]),
            crop=int(transform.crop_size[0]),
            mean=tuple(transform.mean),
            std=tuple(transform.std),
            interpolation=transform.interpolation.value,
        )
        if (self.preprocess.resize, self.preprocess.crop) != (spec.resize, spec.crop):
            raise RuntimeError(
                f"torchvision's {spec.weights_enum} transforms resize to "
                f"{self.preprocess.resize} and crop {self.preprocess.crop}, not "
                f"{spec.resize} and {spec.crop} as BACKBONES says; update BACKBONES."
            )
        model = load_backbone(name, weights.path).to(self.device)
        if self._half:
            model = model.half()
        self._model = model.to(memory_format=torch.channels_last)
        dtype = torch.float16 if self._half else torch.float32
        self._mean = torch.tensor(self.preprocess.mean, device=self.device, dtype=dtype)
        self._std = torch.tensor(self.preprocess.std, device=self.device, dtype=dtype)
        self.batch_size = 64 if self.device != "cpu" else spec.cpu_batch
        self.identity = ExtractorIdentity(
            model=name,
            weights=weights.path.name,
            weights_sha256=file_sha256(weights.path),
            preprocess=self.preprocess.key(),
            dim=spec.dim,
            origin=weights.origin,
        )
        logger.info(
            "loaded %s weights %s (%s) on %s",
            spec.title,
            weights.path,
            weights.origin,
            self.device,
        )

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        threads = torch.get_num_threads()
        share = self.device == "cpu" and self.cpu_threads and self.cpu_threads != threads
        if share:
            torch.set_num_threads(self.cpu_threads)
        try:
            return self._forward(pixels)
        finally:
            if share:
                torch.set_num_threads(threads)

    def _forward(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        if not pixels.flags.writeable:
            pixels = pixels.copy()
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)
            batch = batch.permute(0, 3, 1, 2).to(self._mean.dtype).div_(255.0)
            batch = (batch - self._mean[:, None, None]) / self._std[:, None, None]
            batch = batch.contiguous(memory_format=torch.channels_last)
            out = self._model(batch)
            return out.float().cpu().numpy()


# -- weights-free fallback --------------------------------------------------------------


class ColourTextureExtractor:
    """Colour and texture statistics: a weights-free descriptor, 634-d.

    Blocks, each L2-normalised then weighted: an HSV joint histogram (12 x 3 x 3, square
    root), the mean and spread of the gradient magnitude at three scales, a histogram of
    the coarsest gradient magnitudes (8 log bins), and local binary pattern histograms
    (256 codes, square root) at 224 and 112 px. Weights chosen on ucmerced-landuse (see
    benchmarks/bench_pipeline.py): about half of a pretrained CNN's NMI there.
    """

    def __init__(self, fallback: bool = False, notice: str | None = None, resize: int = 224):
        # Standing in for a backbone, it takes the same crops, so decoding can start
        # before anyone knows whether the backbone's weights exist.
        self.preprocess = Preprocess(resize=resize, crop=224, mean=None, std=None)
        self.device = "cpu"
        self.batch_size = 32
        self.notice = notice
        dim = self._describe(np.zeros((224, 224, 3), np.uint8)).shape[0]
        self.identity = ExtractorIdentity(
            model=FALLBACK_EXTRACTOR,
            weights="none",
            weights_sha256="v2",
            preprocess=self.preprocess.key(),
            dim=dim,
            origin="built in",
            fallback=fallback,
        )

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        return np.stack([self._describe(image) for image in pixels]).astype(np.float32)

    @staticmethod
    def _describe(rgb: np.ndarray) -> np.ndarray:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)  # H in 0..179
        colour = cv2.calcHist([hsv], [0, 1, 2], None, [12, 3, 3], [0, 180, 0, 256, 0, 256])
        colour = np.sqrt(colour.ravel())

        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        spread = []
        level = grey
        for _ in range(3):
            gx = cv2.Sobel(level, cv2.CV_32F, 1, 0, ksize=3)
            gy = cv2.Sobel(level, cv2.CV_32F, 0, 1, ksize=3)
            magnitude = cv2.magnitude(gx, gy)
            spread += [float(magnitude.mean()), float(magnitude.std())]
            level = cv2.pyrDown(level)
        coarse = np.histogram(np.log1p(magnitude), bins=8, range=(0, 7))[0].astype(np.float64)

        blocks = [
            (colour, 1.0),
            (np.array(spread), 1.2),
            (coarse, 1.2),
            (_lbp_histogram(grey), 0.8),
            (_lbp_histogram(cv2.resize(grey, (112, 112), interpolation=cv2.INTER_AREA)), 0.8),
        ]
        return np.concatenate([w * b / (np.linalg.norm(b) + 1e-9) for b, w in blocks])


def _lbp_histogram(grey: np.ndarray) -> np.ndarray:
    """Square-rooted histogram of 8-neighbour local binary pattern codes."""
    centre = grey[1:-1, 1:-1]
    codes = np.zeros(centre.shape, np.int32)
    shifts = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0)]
    for bit, (dy, dx) in enumerate(shifts):
        neighbour = grey[dy : dy + centre.shape[0], dx : dx + centre.shape[1]]
        codes |= (neighbour >= centre).astype(np.int32) << bit
    return np.sqrt(np.bincount(codes.ravel(), minlength=256).astype(np.float64))


# -- LiteRT MobileNet V1 (optional) -----------------------------------------------------


class LiteRTExtractor:
    """An int8 MobileNet V1 embedding model (1024-d) run by ``ai-edge-litert`` on the CPU.

    Raises
    ------
    ImportError
        With the install command, when ``ai-edge-litert`` is missing.
    """

    notice: str | None = None

    def __init__(self, model_path: str | os.PathLike, num_threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ImportError(
                "The litert-mobilenet_v1 extractor needs ai-edge-litert: "
                "pip install 'softclust-gui[litert]'."
            ) from exc
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"The model file {path} does not exist; check the path.")
        self._interpreter = Interpreter(
            model_path=str(path), num_threads=num_threads or max(1, (os.cpu_count() or 2) // 2)
        )
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        size = int(self._input["shape"][1])
        self.preprocess = Preprocess(resize=size, crop=size, mean=None, std=None)
        self.device = "cpu"
        self.batch_size = 16
        dim = int(np.prod(self._output["shape"][1:]))
        self.identity = ExtractorIdentity(
            model=LITERT_EXTRACTOR,
            weights=path.name,
            weights_sha256=file_sha256(path),
            preprocess=self.preprocess.key(),
            dim=dim,
            origin="user file",
        )

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        scale, zero = self._output["quantization"]
        out = np.empty((len(pixels), self.identity.dim), np.float32)
        for i, image in enumerate(pixels):
            self._interpreter.set_tensor(self._input["index"], image[None].astype(np.uint8))
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._output["index"]).reshape(-1)
            out[i] = (raw.astype(np.float32) - zero) * scale if scale else raw
        return out


# -- the factory ------------------------------------------------------------------------


def make_extractor(
    name: str = DEFAULT_EXTRACTOR,
    *,
    device: str = "auto",
    weights_file: str | os.PathLike | None = None,
    download: bool = True,
    on_download_progress: DownloadProgress | None = None,
) -> Extractor:
    """Build the extractor ``name``, or the weights-free fallback when no weights exist.

    Parameters
    ----------
    name : str
        One of ``EXTRACTOR_NAMES``.
    device : str
        "auto", "cpu", "cuda" or "mps".
    weights_file : path, optional
        A weights file to use first (a torchvision state_dict, or the ``.tflite`` model).
    download : bool
        Allow a download when no local weights exist and the machine is online.
    on_download_progress : callable, optional
        Called with (bytes done, bytes total) during a download.
    """
    if name not in EXTRACTOR_NAMES:
        raise ValueError(
            f"extractor must be one of {', '.join(EXTRACTOR_NAMES)}; got {name!r}."
        )
    if name == FALLBACK_EXTRACTOR:
        return ColourTextureExtractor()
    if name == LITERT_EXTRACTOR:
        model = weights_file or paths.resources_dir() / "weights" / LITERT_WEIGHTS
        return LiteRTExtractor(model)
    source = find_weights(
        name, weights_file, download=download, on_download_progress=on_download_progress
    )
    if source is not None:
        return TorchvisionExtractor(name, source, device)
    places = ", ".join(str(p) for p, _ in weights_search_paths(name))
    notice = (
        f"No weights for {BACKBONES[name].title} were found (looked in {places}"
        f"{'; no download was possible' if download else ''}). Images are sorted by colour and "
        f"texture instead, which separates scenes less well. To use the network, copy "
        f"{weights_file_name(name)} into one of those folders or choose a weights file."
    )
    logger.warning("%s", notice)
    return ColourTextureExtractor(fallback=True, notice=notice, resize=BACKBONES[name].resize)


def expected_input(name: str) -> tuple[int, int]:
    """(resize, crop) in pixels that extractor ``name`` will ask for, without building it.

    For a backbone this holds whether or not its weights are found (the fallback then
    takes the same crops), so a pipeline can decode while the model loads.
    """
    if name in BACKBONES:
        return BACKBONES[name].resize, BACKBONES[name].crop
    if name in (FALLBACK_EXTRACTOR, LITERT_EXTRACTOR):
        return 224, 224
    raise ValueError(f"extractor must be one of {', '.join(EXTRACTOR_NAMES)}; got {name!r}.")
