"""From a folder or a drone's card to features, thumbnails and metadata. No Qt here.

Nothing in this package ever writes next to the images or onto a card: the only file it
writes is the cache in ``paths.cache_dir()`` (and downloaded weights in torch's hub cache).
Importing it does not import torch; building a torch extractor does (2-3 s cold), so a
GUI builds it in a worker early, and can show cached thumbnails meanwhile through
``FeatureCache().thumbnail(path)``.

Scan (``scan``)
    ``scan_source(source, *, metadata=False, cancel=None, on_progress=None) -> ScanResult``
        ``ScanResult.images``: ``ImageRecord(path, size, mtime_ns, kind, companions,
        metadata)`` sorted by path (identity = path); ``ScanResult.skipped``:
        ``SkippedFile(path, reason)``; ``layout`` "camera card" (only DCIM/ is walked) or
        "folder". Companions: same folder, same base name (DJI_0001.DNG/.SRT/.LRF beside
        DJI_0001.JPG). ``metadata=True`` reads headers (about 0.2 ms an image); the
        pipeline fills metadata anyway.
    ``find_card_volumes(mount_roots=None) -> list[CardVolume(root, dcim, label)]``
        Mounted volumes holding DCIM/; ``mount_roots`` are folders whose children are
        mount points (default: /media/$USER, /run/media/$USER, /media, /mnt, /Volumes;
        removable drive letters on Windows).
    ``ImageMetadata``: width, height, orientation, captured_at, camera_make, camera_model,
        latitude, longitude, altitude, relative_altitude, gimbal_pitch, flight_yaw.

Extractors (``extractors``)
    ``make_extractor(name="mobilenet_v3_large", *, device="auto", weights_file=None,
    download=True, on_download_progress=None) -> Extractor``
        Names: ``EXTRACTOR_NAMES`` = mobilenet_v3_large (default), resnet50,
        litert-mobilenet_v1 (``[litert]`` extra), colour-texture (weights-free). Weights:
        ``weights_file``, then ``resources/weights/``, then torch's hub cache, then a
        download when online; else the colour-texture fallback with
        ``identity.fallback=True`` and a ``notice`` sentence for the user (also logged).
    ``Extractor``: ``identity`` (ExtractorIdentity; ``key()`` keys the cache),
        ``preprocess``, ``batch_size``, ``device``, ``notice``,
        ``embed(pixels (n, crop, crop, 3) uint8) -> (n, dim) float32``.

Pipeline (``pipeline``)
    ``FeaturePipeline(extractor, cache=None, *, workers=None, batch_size=None,
    thumbnail_size=256, max_pixels=150_000_000, on_progress=None, on_thumbnail=None,
    cancel=None, device="auto", model_threads=None).run(records) -> PipelineResult``
        ``on_progress(Progress(stage, done, total, rate, eta_s, skipped, device))``;
        ``on_thumbnail(record, jpeg_bytes)`` as each thumbnail exists; both called on the
        thread that runs ``run``. ``cancel``: a ``threading.Event``; ``run`` returns
        within about a second, keeping finished batches in the cache and the result.
        ``PipelineResult``: ``features`` (n_ok, dim) float32 aligned with ``images``,
        ``skipped``, ``pending`` (not reached after a cancel), ``extractor``,
        ``fallback_used``, ``notice``, ``cancelled``, ``from_cache``, ``computed``,
        ``elapsed_s``, ``device``. ``cache=False`` runs without a cache. Images that
        failed for a fault of the file are remembered and skipped quickly next time.
    ``decode_image(path, kind, preprocess, *, thumbnail_size=256, max_pixels=...)
    -> DecodedImage(pixels, thumbnail, thumbnail_size, metadata, reduction)`` raises
        ``DecodeError`` (``str`` = the reason; ``permanent``) or FileNotFoundError.

Cache (``cache``)
    ``FeatureCache(path=None)``: ``thumbnail(path) -> bytes | None``,
    ``metadata(path) -> ImageMetadata | None``; thread-safe, WAL, one transaction a batch.

Reduction (``reduce``)
    ``reduce_features(features, max_dims=128, *, whiten=False, random_state=0,
    return_model=False)``: L2-normalise rows, PCA to ``min(max_dims, n, d)`` columns.
"""

from softclust_gui.imaging.cache import FeatureCache
from softclust_gui.imaging.decode import DecodeError, Preprocess, decode_image
from softclust_gui.imaging.extractors import (
    DEFAULT_EXTRACTOR,
    EXTRACTOR_NAMES,
    Extractor,
    ExtractorIdentity,
    find_weights,
    make_extractor,
)
from softclust_gui.imaging.metadata import ImageMetadata
from softclust_gui.imaging.pipeline import FeaturePipeline, PipelineResult, Progress
from softclust_gui.imaging.reduce import l2_normalise, reduce_features
from softclust_gui.imaging.scan import (
    CardVolume,
    ImageRecord,
    ScanResult,
    SkippedFile,
    find_card_volumes,
    scan_source,
)

__all__ = [
    "DEFAULT_EXTRACTOR",
    "EXTRACTOR_NAMES",
    "CardVolume",
    "DecodeError",
    "Extractor",
    "ExtractorIdentity",
    "FeatureCache",
    "FeaturePipeline",
    "ImageMetadata",
    "ImageRecord",
    "PipelineResult",
    "Preprocess",
    "Progress",
    "ScanResult",
    "SkippedFile",
    "decode_image",
    "find_card_volumes",
    "find_weights",
    "l2_normalise",
    "make_extractor",
    "reduce_features",
    "scan_source",
]
