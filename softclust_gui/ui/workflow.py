"""The sorting workflow off the GUI thread: scan, features, clustering, re-clustering.

``SortJob`` runs each stage in a worker and reports back with signals; the layers below
know nothing of Qt. A newer request (a settings change, a new folder) cancels the stale
run of the same kind instead of queueing behind it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage
from threadpoolctl import threadpool_limits

from softclust_gui.imaging import (
    DEFAULT_EXTRACTOR,
    FeaturePipeline,
    ImageRecord,
    PipelineResult,
    Progress,
    make_extractor,
    reduce_features,
    scan_source,
)
from softclust_gui.imaging.scan import IMAGE_KINDS
from softclust_gui.session import (
    AUTO,
    MAX_AUTO_CLUSTERS,
    ROOT,
    ImageEntry,
    Session,
    SessionError,
    SessionFileError,
    find_saved_session,
    open_session,
    save_session,
)
from softclust_gui.ui.thumbnails import image_from_jpeg
from softclust_gui.ui.workers import Cancelled, Worker, WorkerContext, WorkerSlot

logger = logging.getLogger(__name__)

GROUP_BY = {"Similar look": "compact", "Connected shapes": "connected"}
DEVICE_WORDS = {"cpu": "the CPU", "cuda": "the GPU", "mps": "the GPU"}


@dataclass(frozen=True)
class SortSettings:
    """What the user chose: clusters wanted, how to group, which feature model."""

    n_clusters: int | str = 8  # or AUTO
    criterion: str = "compact"
    model: str = DEFAULT_EXTRACTOR
    random_state: int = 0

    @property
    def surface(self) -> str:
        # A curved surface pays off only with a criterion that follows the data's shape.
        return "mlp" if self.criterion == "connected" else "linear"


@dataclass
class Prepared:
    """What the features stage hands to the GUI: the session to show and what to say."""

    session: Session
    resumed: bool
    notices: list[str]
    skipped: list
    projection_source: np.ndarray | None


# -- worker functions (no Qt widgets; plain layers underneath) ----------------------------


def scan_task(context: WorkerContext, source: Path):
    result = scan_source(source, cancel=context.cancel_event)
    context.check_cancelled()
    return result


class _ThumbnailBatch:
    """Sends thumbnails to the GUI in batches, about ten a second.

    One signal per thumbnail would post thousands of events, each waiting for the GIL
    behind the busy pipeline threads: the event loop would starve behind them.
    """

    INTERVAL_S = 0.1

    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        self.items: list[tuple[str, QImage]] = []
        self.last = time.monotonic()

    def add(self, record: ImageRecord, data: bytes) -> None:
        self.items.append((str(record.path), image_from_jpeg(data)))
        if time.monotonic() - self.last >= self.INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self.items:
            self.context.progress(("thumbnails", self.items))
            self.items = []
        self.last = time.monotonic()


def features_task(
    context: WorkerContext, source: Path, records: list[ImageRecord], model: str
) -> Prepared:
    """Features (cached or computed), then the saved session resumed or a new one."""
    context.progress(("stage", "Loading the feature model"))
    extractor = make_extractor(model, download=False)
    notices = [extractor.notice] if extractor.notice else []

    def on_progress(progress: Progress) -> None:
        context.progress(("features", progress))

    batch = _ThumbnailBatch(context)
    pipeline = FeaturePipeline(
        extractor,
        on_progress=on_progress,
        on_thumbnail=batch.add,
        cancel=context.cancel_event,
    )
    result = pipeline.run(records)
    batch.flush()
    context.check_cancelled()
    if not result.images:
        raise SessionError("none of the images could be read; see the skipped files")
    context.progress(("stage", "Preparing the clusters"))
    # One BLAS thread: the decomposition holds the GIL while it runs, and threaded BLAS
    # on a busy 2-core laptop took 0.45 s instead of 0.07 s, freezing the window.
    with threadpool_limits(1):
        features = reduce_features(result.features)
    session, resumed, notice = _resume_or_new(source, result, features)
    if notice:
        notices.append(notice)
    return Prepared(session, resumed, notices, list(result.skipped), features)


def _resume_or_new(source: Path, result: PipelineResult, features: np.ndarray):
    rows = {r.path: i for i, r in enumerate(result.images)}
    saved = find_saved_session(source)
    if saved is not None:
        try:
            session = open_session(saved)
        except SessionFileError as exc:
            logger.warning("not resuming %s: %s", saved, exc)
            session, notice = (
                None,
                f"The saved sorting could not be opened ({exc}); sorting again.",
            )
        else:
            missing = [e.path for e in session.images if e.path not in rows]
            if not missing:
                session.set_features_for([r.path for r in result.images], features)
                extra = len(rows) - len(session.images)
                note = f"{extra} images added since then are not in it." if extra > 0 else ""
                return session, True, f"Resumed your saved sorting. {note}".strip()
            session.store.close()
            notice = (
                f"{len(missing)} images of the saved sorting are gone from the folder; "
                "sorting again."
            )
    else:
        notice = ""
    session = Session(source, [ImageEntry.from_record(r) for r in result.images], features)
    save_session(session)
    return session, False, notice


def cluster_task(context: WorkerContext, session: Session, node_id: int, settings, n: int):
    from softclust_gui.engine import FitCancelled

    def callback(progress) -> bool:
        context.progress(progress)
        return context.cancelled

    try:
        return session.fit_node(
            node_id,
            n_clusters=n,
            criterion=settings.criterion,
            surface=settings.surface,
            random_state=settings.random_state,
            callback=callback,
        )
    except FitCancelled:
        raise Cancelled from None


# -- the Qt side --------------------------------------------------------------------------


class SortJob(QObject):
    """Drives one source from scan to a clustered session, and later re-clusterings.

    Signals carry plain values; every one arrives on the GUI thread.
    """

    stage = Signal(str, int, int, float, float)  # text, done, total, rate, eta (-1: unknown)
    scanned = Signal(list)  # image paths as strings
    thumbnails = Signal(list)  # (path as a string, QImage) pairs
    skipped = Signal(list)  # SkippedFile
    notice = Signal(str)
    session_ready = Signal(object)  # Session, before any clustering
    clustered = Signal(object)  # Session, after a clustering was applied
    stopped = Signal(str)  # cancelled or nothing to do, in plain words
    failed = Signal(str, object)  # what failed, the exception

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = SortSettings()
        self.source: Path | None = None
        self.records: list[ImageRecord] = []
        self.session: Session | None = None
        self.busy = False
        self._scan = WorkerSlot(self)
        self._features = WorkerSlot(self)
        self._cluster = WorkerSlot(self)
        self._generation = 0

    # -- requests ----------------------------------------------------------------------
    def open(self, source: Path, settings: SortSettings | None = None) -> None:
        self.cancel()
        self._generation += 1
        self.source = Path(source)
        self.settings = settings or self.settings
        self.session = None
        self.busy = True
        self.stage.emit("Looking for images", 0, 0, 0.0, -1.0)
        self._run(self._scan, Worker(scan_task, self.source), self._scanned, "Scanning")

    def change_settings(self, settings: SortSettings) -> None:
        """Re-cluster from cached features; a new model recomputes the features first."""
        old, self.settings = self.settings, settings
        if self.source is None:
            return
        if settings.model != old.model or self.session is None:
            if self.records:
                self._generation += 1
                self._cluster.cancel()
                self._start_features()
            return
        self.cluster(ROOT, settings.n_clusters)

    def cluster(self, node_id: int, n_clusters: int | str) -> None:
        """Cluster a node's images into ``n_clusters``, or ``AUTO``: as many as found."""
        if self.session is None:
            return
        count = self.session.count(node_id)
        n = n_clusters if n_clusters == AUTO else min(n_clusters, count)
        if count < 2 or n == 1:
            self.stopped.emit(
                f"{self.session.name(node_id)!r} holds {count} image(s):"
                " there is nothing to split."
            )
            return
        self.busy = True
        splits = min(MAX_AUTO_CLUSTERS, count) - 1 if n == AUTO else n - 1
        self.stage.emit("Sorting into clusters", 0, splits, 0.0, -1.0)
        worker = Worker(cluster_task, self.session, node_id, self.settings, n)
        worker.signals.progress.connect(self._cluster_progress)
        self._run(self._cluster, worker, self._fitted, "Clustering")

    def cancel(self) -> None:
        for slot in (self._scan, self._features, self._cluster):
            slot.cancel()

    # -- stages ------------------------------------------------------------------------
    def _run(self, slot: WorkerSlot, worker: Worker, on_result, what: str) -> None:
        generation = self._generation
        worker.signals.result.connect(
            lambda value: self._if_current(generation, on_result, value)
        )
        worker.signals.error.connect(
            lambda exc: self._if_current(generation, self._error, (what, exc))
        )
        worker.signals.cancelled.connect(
            lambda: self._if_current(generation, self._cancelled, slot, worker)
        )
        slot.start(worker)

    def _if_current(self, generation: int, handler, *args) -> None:
        if generation == self._generation:
            handler(*args)

    def _scanned(self, scan) -> None:
        self.records = list(scan.images)
        bad = [s for s in scan.skipped if Path(s.path).suffix.lower() in IMAGE_KINDS]
        if bad:
            self.skipped.emit(bad)
        if not self.records:
            self.busy = False
            self.stopped.emit(
                f"No images were found in {self.source}. Choose a folder that holds photos "
                "(JPEG, PNG, TIFF, WebP, DNG)."
            )
            return
        self.scanned.emit([str(r.path) for r in self.records])
        self._start_features()

    def _start_features(self) -> None:
        self.busy = True
        self.stage.emit("Loading the feature model", 0, len(self.records), 0.0, -1.0)
        worker = Worker(features_task, self.source, self.records, self.settings.model)
        worker.signals.progress.connect(self._features_progress)
        self._run(self._features, worker, self._prepared, "Computing features")

    def _features_progress(self, item) -> None:
        kind = item[0]
        if kind == "thumbnails":
            self.thumbnails.emit(item[1])
        elif kind == "stage":
            self.stage.emit(item[1], 0, 0, 0.0, -1.0)
        else:
            p: Progress = item[1]
            text = (
                "Reading the cache"
                if p.stage == "cache"
                else f"Computing features on {DEVICE_WORDS.get(p.device, p.device)}"
            )
            eta = -1.0 if p.eta_s is None else float(p.eta_s)
            self.stage.emit(text, p.done, p.total, float(p.rate or 0.0), eta)

    def _prepared(self, prepared: Prepared) -> None:
        if self.session is not None and self.session is not prepared.session:
            self._close_store(self.session)
        self.session = prepared.session
        if prepared.skipped:
            self.skipped.emit(prepared.skipped)
        for text in prepared.notices:
            self.notice.emit(text)
        self.session_ready.emit(prepared.session)
        if prepared.resumed and len(prepared.session.node_ids()) > 1:
            self.busy = False
            self.clustered.emit(prepared.session)
            return
        self.cluster(ROOT, self.settings.n_clusters)

    def _cluster_progress(self, progress) -> None:
        self.stage.emit(
            progress.message or "Sorting into clusters",
            progress.done,
            progress.total,
            0.0,
            -1.0,
        )

    def _fitted(self, fit) -> None:
        self.busy = False
        try:
            self.session.apply_fit(fit)
        except SessionError as exc:
            self.stopped.emit(str(exc))
            return
        self.clustered.emit(self.session)

    def _cancelled(self, slot: WorkerSlot, worker: Worker) -> None:
        if slot.current is not None and slot.current is not worker:
            return  # a newer run of the same kind replaced it
        self.busy = False
        self.stopped.emit("Cancelled. Work already done is kept in the cache.")

    def _error(self, failure) -> None:
        self.busy = False
        what, exc = failure
        if isinstance(exc, (SessionError, FileNotFoundError)):
            self.stopped.emit(str(exc))
            return
        self.failed.emit(what, exc)

    @staticmethod
    def _close_store(session: Session) -> None:
        if session.store is not None:
            session.store.close()
            session.store = None

    def close(self) -> None:
        self.cancel()
        if self.session is not None:
            self._close_store(self.session)

    def with_settings(self, **changes) -> SortSettings:
        return replace(self.settings, **changes)
