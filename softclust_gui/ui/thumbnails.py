"""Thumbnails for the views: a byte-bounded LRU of QImages and a background loader.

Thumbnails come from two places: the feature pipeline hands each one over as soon as it
exists (``ThumbnailLoader.offer``), and later ones are read back from the imaging cache
(or, when the cache has none, decoded from the file) in a worker. QImage, unlike
QPixmap, may be built off the GUI thread, so decoding never touches the event loop.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import OrderedDict
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageOps
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from softclust_gui.ui.workers import Worker, WorkerContext, start

logger = logging.getLogger(__name__)

DEFAULT_BUDGET_BYTES = 96 * 1024 * 1024
THUMBNAIL_PX = 256
BATCH = 48  # thumbnails per loader worker
MAX_PENDING = 512  # older requests (rows scrolled past) are dropped beyond this


class ThumbnailCache:
    """Least-recently-used QImages, bounded by their total size in bytes."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self.total_bytes = 0
        self.peak_bytes = 0
        self._images: OrderedDict[str, QImage] = OrderedDict()

    def __len__(self) -> int:
        return len(self._images)

    def __contains__(self, key: str) -> bool:
        return key in self._images

    def get(self, key: str) -> QImage | None:
        image = self._images.get(key)
        if image is not None:
            self._images.move_to_end(key)
        return image

    def put(self, key: str, image: QImage) -> None:
        old = self._images.pop(key, None)
        if old is not None:
            self.total_bytes -= old.sizeInBytes()
        self._images[key] = image
        self.total_bytes += image.sizeInBytes()
        while self.total_bytes > self.budget_bytes and len(self._images) > 1:
            _, evicted = self._images.popitem(last=False)
            self.total_bytes -= evicted.sizeInBytes()
        self.peak_bytes = max(self.peak_bytes, self.total_bytes)

    def clear(self) -> None:
        self._images.clear()
        self.total_bytes = 0


def image_from_jpeg(data: bytes) -> QImage:
    """A QImage from JPEG bytes (any thread); a null image when the bytes are bad."""
    image = QImage.fromData(data, "JPEG")
    return image.convertToFormat(QImage.Format.Format_RGB32) if not image.isNull() else image


def image_from_file(path: Path, max_px: int) -> QImage:
    """Decode ``path`` reduced to at most ``max_px`` on its long side, upright."""
    with Image.open(path) as source:
        source.draft("RGB", (max_px, max_px))
        picture = ImageOps.exif_transpose(source).convert("RGB")
    picture.thumbnail((max_px, max_px))
    buffer = BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return image_from_jpeg(buffer.getvalue())


class _CacheReader:
    """One imaging cache connection shared by the loader's workers, opened lazily."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache = None
        self._unavailable = False  # the cache could not be opened: decode from files

    def thumbnail(self, path: str) -> bytes | None:
        """The cached thumbnail, or None when there is none or no cache can be read."""
        with self._lock:
            if self._cache is None and not self._unavailable:
                from softclust_gui.imaging import FeatureCache

                try:
                    self._cache = FeatureCache()
                except (sqlite3.Error, OSError) as exc:
                    logger.warning("thumbnails are decoded from the files: %s", exc)
                    self._unavailable = True
        if self._cache is None:
            return None
        try:
            return self._cache.thumbnail(path)
        except sqlite3.Error as exc:
            logger.debug("cache could not serve the thumbnail of %s: %s", path, exc)
            return None

    def close(self) -> None:
        with self._lock:
            if self._cache is not None:
                self._cache.close()
                self._cache = None


def _load_batch(
    context: WorkerContext, keys: list[str], reader: _CacheReader
) -> list[tuple[str, QImage]]:
    """Thumbnails for ``keys``, sent back all at once (one event, not one per image)."""
    loaded = []
    for key in keys:
        context.check_cancelled()
        try:
            data = reader.thumbnail(key)
            image = image_from_jpeg(data) if data else image_from_file(Path(key), THUMBNAIL_PX)
        except Exception as exc:  # a bad file gets no thumbnail, never a crash
            logger.debug("no thumbnail for %s: %s", key, exc)
            image = QImage()
        loaded.append((key, image))
    return loaded


class ThumbnailLoader(QObject):
    """Serves thumbnails by path from the cache, loading misses in the background.

    ``ready(key)`` is emitted on the GUI thread when a thumbnail has arrived; a key whose
    thumbnail could not be made is remembered in ``failed`` and not asked for again.
    """

    ready = Signal(str)

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES, parent=None) -> None:
        super().__init__(parent)
        self.cache = ThumbnailCache(budget_bytes)
        self.failed: set[str] = set()
        self._pending: OrderedDict[str, None] = OrderedDict()
        self._worker: Worker | None = None
        self._reader = _CacheReader()

    def get(self, key: str) -> QImage | None:
        """The thumbnail if it is in memory; otherwise ask for it and return None."""
        image = self.cache.get(key)
        if image is None and key not in self.failed:
            self.request(key)
        return image

    def request(self, key: str) -> None:
        self._pending.pop(key, None)
        self._pending[key] = None  # newest last: served first
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
        if self._worker is None:
            self._start_batch()

    def offer(self, key: str, image: QImage) -> None:
        """Take a thumbnail made elsewhere (by the feature pipeline)."""
        if image.isNull():
            self.failed.add(key)
            return
        self._pending.pop(key, None)
        self.cache.put(key, image)
        self.ready.emit(key)

    def offer_many(self, items: list[tuple[str, QImage]]) -> None:
        for key, image in items:
            self.offer(key, image)

    def cancel(self) -> None:
        self._pending.clear()
        if self._worker is not None:
            self._worker.cancel()

    def _start_batch(self) -> None:
        keys = []
        while self._pending and len(keys) < BATCH:
            key, _ = self._pending.popitem(last=True)
            if key not in self.cache:
                keys.append(key)
        if not keys:
            return
        worker = Worker(_load_batch, keys, self._reader)
        worker.signals.result.connect(self._arrived)
        worker.signals.finished.connect(self._batch_done)
        self._worker = worker
        start(worker)

    def _arrived(self, items: list[tuple[str, QImage]]) -> None:
        for key, image in items:
            self.offer(key, image)

    def _batch_done(self) -> None:
        self._worker = None
        if self._pending:
            self._start_batch()
