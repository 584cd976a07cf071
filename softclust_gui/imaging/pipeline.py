"""From image records to a feature matrix: cache look-up, threaded decode, batched inference.

Decoding runs in a pool of long-lived threads (PIL and libjpeg release the GIL) that stays
a bounded window ahead of the model, so decoding of the next batch overlaps inference of
the current one and the slower of the two sets the pace. Everything a batch produced is
written to the cache in one transaction; cancelling keeps every finished batch.
"""

from __future__ import annotations

import functools
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
    Preprocess,
    decode_image,
)
from softclust_gui.imaging.extractors import (
    DEFAULT_EXTRACTOR,
    Extractor,
    ExtractorIdentity,
    expected_input,
    make_extractor,
)
from softclust_gui.imaging.metadata import ImageMetadata
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
    extractor : ExtractorIdentity or None
        What made the features; ``extractor.fallback`` tells the weights-free fallback.
        None only when the run was cancelled before a model named by its name was built.
    notice : str or None
        A sentence for the user, e.g. why the fallback is in use.
    warnings : list of str
        Sentences for the user about the run itself, e.g. a cache that could not be written.
    """

    features: np.ndarray
    images: list[ImageRecord]
    skipped: list[SkippedFile]
    pending: list[ImageRecord]
    extractor: ExtractorIdentity | None
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
        return self.extractor is not None and self.extractor.fallback


ProgressCallback = Callable[[Progress], None]
ThumbnailCallback = Callable[[ImageRecord, bytes], None]


class FeaturePipeline:
    """Compute, or fetch from the cache, features and thumbnails for image records.

    Parameters
    ----------
    extractor : Extractor or str
        An extractor from ``make_extractor``, or the name of one: then it is built by
        ``run`` in a background thread (importing torch takes seconds) while cached
        thumbnails are sent and the first images decode.
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
        ``on_thumbnail(record, jpeg_bytes)`` once for each image as soon as its thumbnail
        exists (cached ones first), from the thread that calls ``run``.
    cancel : threading.Event, optional
        Set it from any thread; ``run`` returns within about one batch (well under a
        second on the default batch sizes) with ``cancelled=True``.
    device, weights_file, download : optional
        Passed to ``make_extractor`` when ``extractor`` is a name.
    model_threads : int, optional
        Torch threads for a CPU model during the run; default half the cores, so that
        decoding and inference share the CPU instead of fighting over it.
    """

    def __init__(
        self,
        extractor: Extractor | str = DEFAULT_EXTRACTOR,
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
        weights_file: str | os.PathLike | None = None,
        download: bool = True,
        progress_interval: float = 0.25,
        model_threads: int | None = None,
    ):
        if isinstance(extractor, str):
            resize, crop = expected_input(extractor)  # also checks the name
            self.extractor: Extractor | None = None
            self._build = functools.partial(
                make_extractor,
                extractor,
                device=device,
                weights_file=weights_file,
                download=download,
            )
            self.preprocess = Preprocess(resize, crop)
        else:
            self.extractor = extractor
            self._build = None
            self.preprocess = extractor.preprocess
        self.cache_problem: str | None = None  # why the default cache could not be opened
        self.cache = self._open_cache() if cache is None else (cache or None)
        self.workers = min(8, os.cpu_count() or 1) if workers is None else workers
        self.batch_size = batch_size
        if (batch_size is not None and batch_size < 1) or self.workers < 1:
            raise ValueError(
                f"batch_size and workers must be >= 1; got {batch_size} and {self.workers}."
            )
        self.thumbnail_size = thumbnail_size
        self.max_pixels = max_pixels
        self.on_progress = on_progress
        self.on_thumbnail = on_thumbnail
        self.cancel = cancel or threading.Event()
        self.progress_interval = progress_interval
        self.model_threads = model_threads

    def run(self, records: Iterable[ImageRecord]) -> PipelineResult:
        """Process ``records``; see the class docstring. Never raises for a bad image.

        Raises
        ------
        ValueError, FileNotFoundError, ImportError
            When the extractor named in the constructor cannot be built.
        """
        records = list({record.path: record for record in records}.values())  # no duplicates
        run = _Run(self, records)
        try:
            run.execute()
        finally:
            run.close()
        return run.result()

    def _open_cache(self) -> FeatureCache | None:
        try:
            return FeatureCache()
        except (sqlite3.Error, OSError) as exc:
            self.cache_problem = f"The image cache cannot be opened ({exc})"
            logger.warning("%s", self.cache_problem)
            return None


class _Run:
    """The state of one ``FeaturePipeline.run``."""

    def __init__(self, pipeline: FeaturePipeline, records: list[ImageRecord]):
        self.p = pipeline
        self.records = records
        self.cache = pipeline.cache
        self.extractor = pipeline.extractor
        self.loader: Future | None = None
        self.saved_threads: tuple[object, int | None] | None = None
        self.vectors: dict[Path, np.ndarray] = {}
        self.done_records: dict[Path, ImageRecord] = {}
        self.cached_meta: dict[Path, ImageMetadata] = {}
        self.thumbnails_sent: set[Path] = set()
        self.skipped: dict[Path, str] = {}
        self.from_cache = 0
        self.computed = 0
        self.cancelled = False
        self.started = time.perf_counter()
        self.stage_started = self.started
        self.last_report = 0.0
        self.timings = {
            "model_wait_s": 0.0,
            "decode_wait_s": 0.0,
            "embed_s": 0.0,
            "store_s": 0.0,
        }
        self.warnings: list[str] = []
        if pipeline.cache_problem and self.cache is None:
            self._without_cache(pipeline.cache_problem)

    # the flow ------------------------------------------------------------------------

    def execute(self) -> None:
        if self.p._build is not None:
            loader = ThreadPoolExecutor(1, thread_name_prefix="softclust-model")
            self.loader = loader.submit(self.p._build)
            loader.shutdown(wait=False)
        else:
            self._model_ready(self.extractor)
        self.report("cache", force=True)
        self._guard_cache("read", self._send_cached_thumbnails)
        if self._stopped():
            return
        # Images never seen before surely need the model: decode them while it loads.
        seen = self.cached_meta.keys() | self.skipped.keys()
        fresh = [r for r in self.records if r.path not in seen]
        self.compute(fresh)
        if self._stopped() or self._wait_model() is None:
            return
        self._guard_cache("read", self._fetch_features)
        self.report("cache", force=True)
        rest = [
            r
            for r in self.records
            if r.path not in self.vectors
            and r.path not in self.skipped
            and r.path in self.cached_meta
        ]
        self.compute(rest)

    def close(self) -> None:
        if self.saved_threads is not None:
            extractor, threads = self.saved_threads
            extractor.cpu_threads = threads

    def _stopped(self) -> bool:
        if self.p.cancel.is_set():
            self.cancelled = True
        return self.cancelled

    # the model -----------------------------------------------------------------------

    def _wait_model(self) -> Extractor | None:
        """The extractor, once built; None when cancelled while it loads."""
        if self.extractor is not None:
            return self.extractor
        start = time.perf_counter()
        while not self.loader.done():
            if self.p.cancel.is_set():
                self.cancelled = True
                return None
            wait_futures([self.loader], timeout=_POLL_S)
        self.timings["model_wait_s"] += time.perf_counter() - start
        self._model_ready(self.loader.result())  # re-raises a failed build
        return self.extractor

    def _model_ready(self, extractor: Extractor) -> None:
        wanted = (self.p.preprocess.resize, self.p.preprocess.crop)
        if (extractor.preprocess.resize, extractor.preprocess.crop) != wanted:
            raise ValueError(
                f"{extractor.identity.model} wants input resized to "
                f"{extractor.preprocess.resize} and cropped to {extractor.preprocess.crop}, "
                f"but images were decoded for {wanted[0]} and {wanted[1]}; pass the built "
                "extractor to FeaturePipeline instead of its name."
            )
        self.extractor = extractor
        if extractor.device == "cpu" and hasattr(extractor, "cpu_threads"):
            # Leave cores to the decoders: measured 5.3 -> 8.3 images/s on 2 cores.
            self.saved_threads = (extractor, extractor.cpu_threads)
            cores = os.cpu_count() or 1
            extractor.cpu_threads = self.p.model_threads or max(1, cores // 2)
        logger.debug("extractor ready: %s", extractor.identity.describe())

    def _batch_size(self) -> int:
        if self.p.batch_size is not None:
            return self.p.batch_size
        return self.extractor.batch_size if self.extractor is not None else 16

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
        device = self.extractor.device if self.extractor is not None else "loading"
        self.p.on_progress(
            Progress(stage, done, len(self.records), rate, eta, len(self.skipped), device)
        )

    # the cache -----------------------------------------------------------------------

    def _without_cache(self, problem: str) -> None:
        message = (
            f"{problem}; this run goes on without it, and its results will be computed "
            "again next time."
        )
        logger.warning("%s", message)
        self.warnings.append(message)

    def _guard_cache(self, verb: str, action) -> None:
        """Use the cache; when it fails (damaged, disk full, read-only), go on without it."""
        if self.cache is None:
            return
        try:
            action(self.cache)
        except sqlite3.Error as exc:
            self._without_cache(f"The image cache {self.cache.path} cannot be {verb} ({exc})")
            self.cache = None

    def _send_cached_thumbnails(self, cache: FeatureCache) -> None:
        self.skipped.update(cache.failures(self.records))
        wanted = [r for r in self.records if r.path not in self.skipped]
        for record, image in cache.images(wanted):
            if self.p.cancel.is_set():
                return
            self.cached_meta[record.path] = image.metadata
            self.thumbnails_sent.add(record.path)
            if self.p.on_thumbnail is not None:
                self.p.on_thumbnail(record, image.thumbnail)
            self.report("cache")

    def _fetch_features(self, cache: FeatureCache) -> None:
        known = [r for r in self.records if r.path in self.cached_meta]
        found = cache.features(known, self.extractor.identity.key())
        for record in known:
            if record.path in found:
                self.vectors[record.path] = found[record.path]
                self.done_records[record.path] = record.with_metadata(
                    self.cached_meta[record.path]
                )
        self.from_cache = len(found)
        logger.debug("cache: %d features, %d known failures", len(found), len(self.skipped))

    # decode and embed ----------------------------------------------------------------

    def compute(self, todo: list[ImageRecord]) -> None:
        if not todo:
            return
        if self.computed == 0:
            self.stage_started = time.perf_counter()
        batch_size = self._batch_size()
        window = batch_size * 2 + self.p.workers
        queue: deque[tuple[ImageRecord, Future]] = deque()
        pending = iter(todo)
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
                    self._send_thumbnail(record, decoded.thumbnail)
                if len(batch) >= batch_size or (not queue and batch):
                    if self._stopped() or self._wait_model() is None:
                        break
                    self._embed_and_store(batch, failures)
                    batch, failures = [], []
                self.report("features")
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        if failures:
            self._guard_cache("written", lambda cache: cache.store_failures(failures))
        self.report("features", force=True)

    def _send_thumbnail(self, record: ImageRecord, jpeg: bytes) -> None:
        if record.path in self.thumbnails_sent:
            return
        self.thumbnails_sent.add(record.path)
        if self.p.on_thumbnail is not None:
            self.p.on_thumbnail(record, jpeg)

    def _fill(self, queue, pending, executor, window) -> None:
        while len(queue) < window:
            record = next(pending, None)
            if record is None:
                return
            future = executor.submit(
                decode_image,
                record.path,
                record.kind,
                self.p.preprocess,
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
        vectors = np.asarray(self.extractor.embed(pixels), dtype=np.float32)
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
        key = self.extractor.identity.key()

        def write(cache: FeatureCache) -> None:
            cache.store(entries, key)
            cache.store_failures(failures)

        self._guard_cache("written", write)
        failures.clear()
        self.timings["store_s"] += time.perf_counter() - start

    # the result ----------------------------------------------------------------------

    def result(self) -> PipelineResult:
        images = [self.done_records[r.path] for r in self.records if r.path in self.vectors]
        ident = self.extractor.identity if self.extractor is not None else None
        dim = ident.dim if ident is not None else 0
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
        self.cancelled = self.cancelled and bool(pending)
        elapsed = time.perf_counter() - self.started
        self.report("done", force=True)
        logger.info(
            "features (%s): %d images (%d cached, %d computed), %d skipped, %d pending, "
            "%.1f s%s",
            ident.describe() if ident is not None else "no model yet",
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
            self.extractor.notice if self.extractor is not None else None,
            self.cancelled,
            self.from_cache,
            self.computed,
            elapsed,
            self.extractor.device if self.extractor is not None else "none",
            self.timings,
            self.warnings,
        )
