"""From image records to a feature matrix: cache look-up, threaded decode, batched inference.

Decoding runs in a pool of long-lived threads (PIL and libjpeg release the GIL) that stays
a bounded window ahead of the model, so decoding of the next batch overlaps inference of
the current one and the slower of the two sets the pace. Everything a batch produced is
written to the cache in one transaction; cancelling keeps every finished batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from softclust_gui.imaging.cache import FeatureCache, NewEntry
from softclust_gui.imaging.decode import (
    DEFAULT_MAX_PIXELS,
    THUMBNAIL_SIZE,
    DecodedImage,
    DecodeError,
    decode_image,
)
from softclust_gui.imaging.extractors import Extractor, ExtractorIdentity, make_extractor
from softclust_gui.imaging.scan import ImageRecord, SkippedFile

logger = logging.getLogger(__name__)

_POLL_S = 0.05  # how often a wait on a decode checks the cancel flag


@dataclass(frozen=True)
class Progress:
    """Where the pipeline stands.

    ``stage`` is "cache" (looking up cached work), "features" (decoding and inference)
    or "done"; ``done`` of ``total`` images are finished in this run so far (cached ones
    included); ``rate`` is images/s of the features stage; ``eta_s`` the seconds left.
    """

    stage: str
    done: int
    total: int
    rate: float
    eta_s: float | None
    skipped: int
    device: str


@dataclass
class PipelineResult:
    """What a run produced; after a cancel, everything finished before it.

    Attributes
    ----------
    features : ndarray of float32, shape (n_ok, dim)
        One row per entry of ``images``, in the order the records were given.
    images : list of ImageRecord
        The images that have features, with ``metadata`` filled.
    skipped : list of SkippedFile
        Images that could not be used, with the reason.
    pending : list of ImageRecord
        Images not reached because the run was cancelled.
    extractor : ExtractorIdentity
        What made the features; ``extractor.fallback`` tells the weights-free fallback.
    notice : str or None
        A sentence for the user, e.g. why the fallback is in use.
    warnings : list of str
        Sentences for the user about the run itself, e.g. a cache that could not be written.
    """

    features: np.ndarray
    images: list[ImageRecord]
    skipped: list[SkippedFile]
    pending: list[ImageRecord]
    extractor: ExtractorIdentity
    notice: str | None
    cancelled: bool
    from_cache: int
    computed: int
    elapsed_s: float
    device: str = "cpu"
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def fallback_used(self) -> bool:
        return self.extractor.fallback


ProgressCallback = Callable[[Progress], None]
ThumbnailCallback = Callable[[ImageRecord, bytes], None]


class FeaturePipeline:
    """Compute, or fetch from the cache, features and thumbnails for image records.

    Parameters
    ----------
    extractor : Extractor or str
        An extractor from ``make_extractor``, or a name to build one with.
    cache : FeatureCache, optional
        Default: the cache in ``paths.cache_dir()``. Pass ``False`` to run without one.
    workers : int, optional
        Decoding threads; default the number of CPU cores (at most 8).
    batch_size : int, optional
        Images per inference batch; default the extractor's.
    on_progress : callable, optional
        ``on_progress(Progress)``, at most every ``progress_interval`` seconds and at the
        end of each stage, from the thread that calls ``run``.
    on_thumbnail : callable, optional
        ``on_thumbnail(record, jpeg_bytes)`` as soon as each thumbnail exists (cached ones
        first), from the thread that calls ``run``.
    cancel : threading.Event, optional
        Set it from any thread; ``run`` returns within about one batch (well under a
        second on the default batch sizes) with ``cancelled=True``.
    device : str
        Used only when ``extractor`` is a name.
    model_threads : int, optional
        Torch threads for a CPU model during the run; default half the cores, so that
        decoding and inference share the CPU instead of fighting over it.
    """

    def __init__(
        self,
        extractor: Extractor | str = "mobilenet_v3_large",
        cache: FeatureCache | bool | None = None,
        *,
        workers: int | None = None,
        batch_size: int | None = None,
        thumbnail_size: int = THUMBNAIL_SIZE,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        on_progress: ProgressCallback | None = None,
        on_thumbnail: ThumbnailCallback | None = None,
        cancel: threading.Event | None = None,
        device: str = "auto",
        progress_interval: float = 0.25,
        model_threads: int | None = None,
    ):
        if isinstance(extractor, str):
            extractor = make_extractor(extractor, device=device)
        self.extractor = extractor
        self.cache = FeatureCache() if cache is None else (cache or None)
        self.workers = min(8, os.cpu_count() or 1) if workers is None else workers
        self.batch_size = extractor.batch_size if batch_size is None else batch_size
        if self.batch_size < 1 or self.workers < 1:
            raise ValueError(
                f"batch_size and workers must be >= 1; "
                f"got {self.batch_size} and {self.workers}."
            )
        self.thumbnail_size = thumbnail_size
        self.max_pixels = max_pixels
        self.on_progress = on_progress
        self.on_thumbnail = on_thumbnail
        self.cancel = cancel or threading.Event()
        self.progress_interval = progress_interval
        self.model_threads = model_threads

    @contextlib.contextmanager
    def _share_cpu(self):
        """On the CPU, leave cores to the decoders: measured 5.3 -> 8.3 images/s on 2 cores."""
        if self.extractor.device != "cpu" or not hasattr(self.extractor, "cpu_threads"):
            yield
            return
        before = self.extractor.cpu_threads
        cores = os.cpu_count() or 1
        self.extractor.cpu_threads = self.model_threads or max(1, cores // 2)
        try:
            yield
        finally:
            self.extractor.cpu_threads = before

    # -- the run ------------------------------------------------------------------------

    def run(self, records: Iterable[ImageRecord]) -> PipelineResult:
        """Process ``records``; see the class docstring. Never raises for a bad image."""
        records = list({record.path: record for record in records}.values())  # no duplicates
        run = _Run(self, records)
        with self._share_cpu():
            run.look_up_cache()
            if self.cancel.is_set():
                run.cancelled = run.cancelled or bool(run.todo)
            else:
                run.compute()
        return run.result()


class _Run:
    """The state of one ``FeaturePipeline.run``."""

    def __init__(self, pipeline: FeaturePipeline, records: list[ImageRecord]):
        self.p = pipeline
        self.records = records
        self.key = pipeline.extractor.identity.key()
        self.vectors: dict[Path, np.ndarray] = {}
        self.done_records: dict[Path, ImageRecord] = {}
        self.skipped: dict[Path, str] = {}
        self.todo: list[ImageRecord] = []
        self.from_cache = 0
        self.computed = 0
        self.cancelled = False
        self.started = time.perf_counter()
        self.stage_started = self.started
        self.last_report = 0.0
        self.timings = {"decode_wait_s": 0.0, "embed_s": 0.0, "store_s": 0.0}
        self.cache = pipeline.cache
        self.warnings: list[str] = []

    # progress ------------------------------------------------------------------------

    def report(self, stage: str, force: bool = False) -> None:
        if self.p.on_progress is None:
            return
        now = time.perf_counter()
        if not force and now - self.last_report < self.p.progress_interval:
            return
        self.last_report = now
        done = len(self.vectors) + len(self.skipped)
        elapsed = now - self.stage_started
        computing = stage in ("features", "done") and elapsed > 0
        rate = self.computed / elapsed if computing else 0.0
        left = len(self.records) - done
        eta = left / rate if rate > 0 else None
        self.p.on_progress(
            Progress(
                stage,
                done,
                len(self.records),
                rate,
                eta,
                len(self.skipped),
                self.p.extractor.device,
            )
        )

    # stage 1: the cache --------------------------------------------------------------

    def look_up_cache(self) -> None:
        try:
            self._look_up_cache()
        except sqlite3.Error as exc:
            message = (
                f"The image cache {self.cache.path} cannot be read ({exc}); everything is "
                "computed again in this run."
            )
            logger.warning("%s", message)
            self.warnings.append(message)
            self.cache = None
            self.todo = [r for r in self.records if r.path not in self.vectors]

    def _look_up_cache(self) -> None:
        cache = self.cache
        self.report("cache", force=True)
        if cache is None:
            self.todo = list(self.records)
            return
        self.skipped.update(cache.failures(self.records))
        cached = cache.features(self.records, self.key)
        wanted = [r for r in self.records if r.path in cached and r.path not in self.skipped]
        for record, image in cache.images(wanted):
            if self.p.cancel.is_set():
                self.cancelled = True
                break
            self.vectors[record.path] = cached[record.path]
            self.done_records[record.path] = record.with_metadata(image.metadata)
            if self.p.on_thumbnail is not None:
                self.p.on_thumbnail(record, image.thumbnail)
            self.report("cache")
        self.from_cache = len(self.vectors)
        self.todo = [
            r for r in self.records if r.path not in self.vectors and r.path not in self.skipped
        ]
        self.report("cache", force=True)
        logger.debug(
            "cache: %d hits, %d known failures, %d to compute",
            self.from_cache,
            len(self.skipped),
            len(self.todo),
        )

    # stage 2: decode and embed -------------------------------------------------------

    def compute(self) -> None:
        if not self.todo:
            return
        self.stage_started = time.perf_counter()
        window = self.p.batch_size * 2 + self.p.workers
        queue: deque[tuple[ImageRecord, Future]] = deque()
        pending = iter(self.todo)
        batch: list[tuple[ImageRecord, DecodedImage]] = []
        failures: list[tuple[ImageRecord, str]] = []
        executor = ThreadPoolExecutor(self.p.workers, thread_name_prefix="softclust-decode")
        try:
            self._fill(queue, pending, executor, window)
            while queue:
                record, future = queue.popleft()
                if not self._wait(future):
                    self.cancelled = True
                    break
                self._fill(queue, pending, executor, window)
                decoded = self._collect(record, future, failures)
                if decoded is not None:
                    batch.append((record, decoded))
                    if self.p.on_thumbnail is not None:
                        self.p.on_thumbnail(record, decoded.thumbnail)
                if len(batch) >= self.p.batch_size or (not queue and batch):
                    if self.p.cancel.is_set():
                        self.cancelled = True
                        break
                    self._embed_and_store(batch, failures)
                    batch, failures = [], []
                self.report("features")
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        if failures:
            self._write(lambda cache: cache.store_failures(failures))
        self.report("features", force=True)

    def _fill(self, queue, pending, executor, window) -> None:
        while len(queue) < window:
            record = next(pending, None)
            if record is None:
                return
            future = executor.submit(
                decode_image,
                record.path,
                record.kind,
                self.p.extractor.preprocess,
                thumbnail_size=self.p.thumbnail_size,
                max_pixels=self.p.max_pixels,
            )
            queue.append((record, future))

    def _wait(self, future: Future) -> bool:
        """Wait for one decode; False when cancelled meanwhile."""
        start = time.perf_counter()
        while not future.done():
            if self.p.cancel.is_set():
                return False
            wait_futures([future], timeout=_POLL_S)
        self.timings["decode_wait_s"] += time.perf_counter() - start
        return not self.p.cancel.is_set()

    def _collect(self, record, future, failures) -> DecodedImage | None:
        try:
            return future.result()
        except DecodeError as exc:
            reason = str(exc)
            if exc.permanent:
                failures.append((record, reason))
        except FileNotFoundError:
            reason = "file vanished before it could be read (card removed?)"
        except OSError as exc:
            reason = f"file could not be read ({exc.strerror or exc})"
        except Exception as exc:  # a decoder bug must not end the batch
            logger.exception("unexpected error decoding %s", record.path)
            reason = f"unexpected error while decoding ({type(exc).__name__}: {exc})"
        logger.info("skipped %s: %s", record.path, reason)
        self.skipped[record.path] = reason
        return None

    def _embed_and_store(self, batch, failures) -> None:
        start = time.perf_counter()
        pixels = np.stack([decoded.pixels for _, decoded in batch])
        vectors = np.asarray(self.p.extractor.embed(pixels), dtype=np.float32)
        self.timings["embed_s"] += time.perf_counter() - start
        entries = []
        for (record, decoded), vector in zip(batch, vectors, strict=True):
            done = record.with_metadata(decoded.metadata)
            self.vectors[record.path] = vector
            self.done_records[record.path] = done
            entries.append(
                NewEntry(
                    done, decoded.metadata, decoded.thumbnail, decoded.thumbnail_size, vector
                )
            )
        self.computed += len(batch)
        start = time.perf_counter()
        self._write(
            lambda cache: (cache.store(entries, self.key), cache.store_failures(failures))
        )
        failures.clear()
        self.timings["store_s"] += time.perf_counter() - start

    def _write(self, action) -> None:
        """Write to the cache; when it fails (disk full, read-only), go on without it."""
        if self.cache is None:
            return
        try:
            action(self.cache)
        except sqlite3.Error as exc:
            message = (
                f"The image cache {self.cache.path} cannot be written ({exc}); this run goes "
                "on without it, and its results will be computed again next time."
            )
            logger.warning("%s", message)
            self.warnings.append(message)
            self.cache = None

    # the result ----------------------------------------------------------------------

    def result(self) -> PipelineResult:
        images = [self.done_records[r.path] for r in self.records if r.path in self.vectors]
        dim = self.p.extractor.identity.dim
        features = (
            np.stack([self.vectors[r.path] for r in images]).astype(np.float32, copy=False)
            if images
            else np.zeros((0, dim), np.float32)
        )
        skipped = [
            SkippedFile(r.path, self.skipped[r.path])
            for r in self.records
            if r.path in self.skipped
        ]
        pending = [
            r for r in self.records if r.path not in self.vectors and r.path not in self.skipped
        ]
        elapsed = time.perf_counter() - self.started
        self.report("done", force=True)
        ident = self.p.extractor.identity
        logger.info(
            "features (%s): %d images (%d cached, %d computed), %d skipped, %d pending, "
            "%.1f s%s",
            ident.describe(),
            len(images),
            self.from_cache,
            self.computed,
            len(skipped),
            len(pending),
            elapsed,
            ", cancelled" if self.cancelled else "",
        )
        return PipelineResult(
            features,
            images,
            skipped,
            pending,
            ident,
            self.p.extractor.notice,
            self.cancelled,
            self.from_cache,
            self.computed,
            elapsed,
            self.p.extractor.device,
            self.timings,
            self.warnings,
        )
