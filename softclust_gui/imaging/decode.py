"""Decode an image once into what the app needs: the model's input crop and a thumbnail.

JPEGs are decoded at reduced size inside the DCT (libjpeg scaling through PIL's ``draft``):
the largest of 1/2, 1/4, 1/8 that still covers both the model's resize size and the
thumbnail, which makes a 20 MP photo several times cheaper to decode. EXIF orientation is
applied, then the thumbnail and the model crop are cut from the same decoded pixels.

Functions here are safe to call from several threads at once: PIL releases the GIL while
it decodes and resizes, so decoding threads overlap with each other and with inference.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from softclust_gui.imaging.metadata import ImageMetadata, read_metadata

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = 256
THUMBNAIL_QUALITY = 85
DEFAULT_MAX_PIXELS = 150_000_000  # 150 MP; larger files are refused as decompression bombs

_heif_ready: bool | None = None


class DecodeError(Exception):
    """An image that cannot be used; ``str(error)`` is the reason shown to the user.

    ``permanent`` is False when the cause lies outside the file (a missing optional
    package, a size limit setting), so that no cache remembers it as a bad file.
    """

    def __init__(self, reason: str, *, permanent: bool = True):
        super().__init__(reason)
        self.permanent = permanent


@dataclass(frozen=True)
class Preprocess:
    """How an extractor wants its input: resize the short side, centre-crop, normalise.

    ``mean`` and ``std`` are per RGB channel on the 0-1 scale; ``None`` means the model
    takes raw 0-255 values.
    """

    resize: int
    crop: int
    mean: tuple[float, float, float] | None = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] | None = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"

    def key(self) -> str:
        return (
            f"resize{self.resize}-crop{self.crop}-{self.interpolation}-{self.mean}-{self.std}"
        )


@dataclass(frozen=True)
class DecodedImage:
    """One decoded image.

    Attributes
    ----------
    pixels : ndarray of uint8, shape (crop, crop, 3)
        The model's input, RGB, upright, not yet normalised.
    thumbnail : bytes
        A JPEG at most ``THUMBNAIL_SIZE`` pixels on its long side, upright.
    thumbnail_size : tuple of int
        The thumbnail's (width, height) in pixels.
    metadata : ImageMetadata
    reduction : int
        The DCT scale denominator used (1, 2, 4 or 8).
    """

    pixels: np.ndarray
    thumbnail: bytes
    thumbnail_size: tuple[int, int]
    metadata: ImageMetadata
    reduction: int


def open_header(path: Path, kind: str) -> ImageMetadata:
    """Metadata from the file's header, reading only the header (not the whole file)."""
    path = Path(path)
    if kind in ("dng", "heic"):
        with _open(path, kind, _read_bytes(path)) as image:
            return read_metadata(image)
    with open(path, "rb") as handle, Image.open(handle) as image:
        return read_metadata(image)


def decode_image(
    path: Path,
    kind: str,
    preprocess: Preprocess,
    *,
    thumbnail_size: int = THUMBNAIL_SIZE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DecodedImage:
    """Decode ``path`` once into the model's input crop, a thumbnail and metadata.

    Raises
    ------
    DecodeError
        For an empty, truncated, corrupt or unsupported file or a decompression bomb; the
        message says which, with the sizes involved.
    FileNotFoundError
        When the file vanished.
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        with _open(path, kind, data) as image:
            metadata = read_metadata(image)
            _check_pixels(image, max_pixels)
            reduction = _draft(image, preprocess.resize, thumbnail_size)
            image.load()
            rgb = _to_rgb(ImageOps.exif_transpose(image))
    except DecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"decompression bomb refused: {exc}") from exc
    except (OSError, SyntaxError, ValueError, IndexError, EOFError) as exc:
        if kind == "dng":
            raise DecodeError(
                f"DNG without a preview this app can read ({exc}); install DNG support "
                "(pip install 'softclust-gui[raw]') or keep the JPEG beside it",
                permanent=False,
            ) from exc
        raise DecodeError(f"truncated or corrupt image data ({exc})") from exc
    thumb_bytes, thumb_size = _thumbnail(rgb, thumbnail_size)
    pixels = _model_crop(rgb, preprocess)
    return DecodedImage(pixels, thumb_bytes, thumb_size, metadata, reduction)


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read()
    if not data:
        raise DecodeError("empty file (0 bytes)")
    return data


def _open(path: Path, kind: str, data: bytes) -> Image.Image:
    if kind == "heic":
        _register_heif()
    if kind == "dng":
        preview = _dng_preview(path)
        if preview is not None:
            return preview
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"decompression bomb refused: {exc}") from exc
    except UnidentifiedImageError as exc:
        if kind == "heic":
            raise DecodeError(
                "HEIC image, but HEIC support is not installed "
                "(pip install 'softclust-gui[heic]')",
                permanent=False,
            ) from exc
        raise DecodeError(
            f"not a readable {kind.upper()} image ({len(data)} bytes; corrupt or another "
            f"format under a {path.suffix} name)"
        ) from exc


def _register_heif() -> None:
    global _heif_ready
    if _heif_ready is None:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_ready = True
        except ImportError:
            _heif_ready = False


def _dng_preview(path: Path) -> Image.Image | None:
    """The DNG's embedded JPEG preview through rawpy; None to fall back on PIL's TIFF."""
    try:
        import rawpy
    except ImportError:
        return None
    try:
        with rawpy.imread(str(path)) as raw:
            thumb = raw.extract_thumb()
    except Exception as exc:  # rawpy raises its own error classes for bad files
        logger.debug("rawpy found no preview in %s: %s", path, exc)
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        return Image.open(io.BytesIO(thumb.data))
    return Image.fromarray(thumb.data)


def _check_pixels(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise DecodeError(f"image has no pixels ({width} x {height})")
    if width * height > max_pixels:
        raise DecodeError(
            f"decompression bomb refused: {width} x {height} = "
            f"{width * height / 1e6:.1f} MP is over the {max_pixels / 1e6:.1f} MP limit "
            "(raise the limit if the image is genuine)",
            permanent=False,
        )


def _draft(image: Image.Image, resize: int, thumbnail_size: int) -> int:
    """Ask libjpeg for the smallest DCT scale that covers the model and the thumbnail."""
    if not isinstance(image, JpegImagePlugin.JpegImageFile):  # MPO files are JPEGs too
        return 1
    width, height = image.size
    scale = max(resize / min(width, height), thumbnail_size / max(width, height))
    if scale >= 1:
        return 1
    wanted = (max(1, int(np.ceil(width * scale))), max(1, int(np.ceil(height * scale))))
    mode = "RGB" if image.mode in ("RGB", "YCbCr") else image.mode
    image.draft(mode, wanted)
    return max(1, round(width / image.size[0]))


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: scale to 8 bits instead of clipping everything above 255.
        array = np.asarray(image, dtype=np.float32)
        top = max(float(array.max()), 1.0)
        grey = (array * (255.0 / top)).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    return image.convert("RGB")


def _thumbnail(image: Image.Image, size: int) -> tuple[bytes, tuple[int, int]]:
    thumb = image.copy()
    thumb.thumbnail((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    thumb.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue(), thumb.size


def _model_crop(image: Image.Image, preprocess: Preprocess) -> np.ndarray:
    width, height = image.size
    scale = preprocess.resize / min(width, height)
    new_size = (
        max(preprocess.crop, round(width * scale)),
        max(preprocess.crop, round(height * scale)),
    )
    resample = {
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
    }[preprocess.interpolation]
    resized = image.resize(new_size, resample)
    left = (new_size[0] - preprocess.crop) // 2
    top = (new_size[1] - preprocess.crop) // 2
    box = (left, top, left + preprocess.crop, top + preprocess.crop)
    return np.asarray(resized.crop(box), dtype=np.uint8)
