"""One way to run work off the GUI thread.

``Worker`` runs a plain function on Qt's global thread pool. The function receives a
``WorkerContext`` to report progress and to check for cancellation; its return value, its
exception, or its cancellation arrives back on the GUI thread as a signal:

    worker = Worker(count_images, folder)
    worker.signals.result.connect(show_count)
    worker.signals.error.connect(show_error)
    start(worker)

Signals: ``started``, ``progress(object)``, ``result(object)``, ``error(object)`` (the
exception), ``cancelled``, and ``finished`` (always last, whatever happened).

Pool threads run below the GUI thread's priority (and so do the threads they start,
which inherit it): on a busy laptop the window keeps answering while work goes on.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal, Slot

logger = logging.getLogger(__name__)

BACKGROUND_NICE = 10  # Linux niceness of pool threads (0 is normal, 19 the lowest)
_thread_state = threading.local()


def lower_thread_priority() -> None:
    """Put the calling thread below normal priority, once; threads it starts inherit it."""
    if getattr(_thread_state, "lowered", False):
        return
    _thread_state.lowered = True
    try:
        if sys.platform.startswith("linux"):
            tid = threading.get_native_id()
            now = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, max(now, BACKGROUND_NICE))
        else:
            QThread.currentThread().setPriority(QThread.Priority.LowPriority)
    except (OSError, AttributeError) as exc:
        logger.debug("could not lower a worker thread's priority: %s", exc)


class Cancelled(Exception):
    """Raised inside a worker function by ``WorkerContext.check_cancelled``."""


class WorkerContext:
    """What a worker function gets to talk back: progress and a cancel flag."""

    def __init__(self, signals: WorkerSignals) -> None:
        self._signals = signals
        self.cancel_event = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled

    def progress(self, value: Any) -> None:
        self._signals.progress.emit(value)


class WorkerSignals(QObject):
    started = Signal()
    progress = Signal(object)
    result = Signal(object)
    error = Signal(object)
    cancelled = Signal()
    finished = Signal()


class Worker(QRunnable):
    """Runs ``fn(context, *args, **kwargs)`` on a pool thread."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the owner keeps it until ``finished``
        self.signals = WorkerSignals()
        self.context = WorkerContext(self.signals)
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self.name = getattr(fn, "__name__", "worker")

    def cancel(self) -> None:
        logger.debug("cancel requested: %s", self.name)
        self.context.cancel_event.set()

    def run(self) -> None:
        lower_thread_priority()
        logger.debug("worker started: %s", self.name)
        self.signals.started.emit()
        try:
            value = self._fn(self.context, *self._args, **self._kwargs)
        except Cancelled:
            logger.debug("worker cancelled: %s", self.name)
            self.signals.cancelled.emit()
        except Exception as exc:
            logger.exception("worker failed: %s", self.name)
            self.signals.error.emit(exc)
        else:
            if self.context.cancelled:
                self.signals.cancelled.emit()
            else:
                logger.debug("worker done: %s", self.name)
                self.signals.result.emit(value)
        finally:
            self.signals.finished.emit()


class _Keeper(QObject):
    """Keeps running workers alive; releases them on the GUI thread when they finish."""

    def __init__(self) -> None:
        super().__init__()
        self.running: dict[WorkerSignals, Worker] = {}

    def hold(self, worker: Worker) -> None:
        self.running[worker.signals] = worker
        worker.signals.finished.connect(self._release)

    @Slot()
    def _release(self) -> None:
        self.running.pop(self.sender(), None)


_keeper: _Keeper | None = None


def _get_keeper() -> _Keeper:
    global _keeper
    if _keeper is None:
        _keeper = _Keeper()
    return _keeper


def start(worker: Worker) -> Worker:
    """Start ``worker`` on the global pool, keeping it alive until it finishes."""
    _get_keeper().hold(worker)
    QThreadPool.globalInstance().start(worker)
    return worker


def running_workers() -> list[Worker]:
    return list(_get_keeper().running.values())


def cancel_all() -> None:
    for worker in running_workers():
        worker.cancel()


class WorkerSlot(QObject):
    """Holds at most one running worker of a kind: a newer request cancels the stale one."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.current: Worker | None = None

    def start(self, worker: Worker) -> Worker:
        if self.current is not None:
            self.current.cancel()
        self.current = worker
        worker.signals.finished.connect(self._forget)
        start(worker)
        return worker

    def cancel(self) -> None:
        if self.current is not None:
            self.current.cancel()

    @Slot()
    def _forget(self) -> None:
        if self.current is not None and self.current.signals is self.sender():
            self.current = None
