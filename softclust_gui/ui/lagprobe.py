"""Measure how long the GUI thread's event loop stays blocked.

A ``LagProbe`` runs a short-interval timer and records the worst gap between two
ticks beyond the interval: that gap is the time the event loop could not answer.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer


class LagProbe(QObject):
    """A ~10 ms timer on the GUI thread that records the worst delay between ticks.

    Use it as a context manager or with ``start``/``stop``; ``worst_ms`` is the longest
    extra wait seen, ``ticks`` the number of ticks.
    """

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self.worst_ms = 0.0
        self.ticks = 0
        self._last = 0.0
        self._timer = QTimer(self)
        self._timer.setObjectName("lagProbe")
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.worst_ms, self.ticks = 0.0, 0
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> float:
        self._timer.stop()
        self._tick()
        return self.worst_ms

    def _tick(self) -> None:
        now = time.perf_counter()
        lag = (now - self._last) * 1000.0 - self.interval_ms
        self.worst_ms = max(self.worst_ms, lag)
        self.ticks += 1
        self._last = now

    def __enter__(self) -> LagProbe:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
