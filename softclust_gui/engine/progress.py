"""Progress reports and cancellation for long fits, without any GUI toolkit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class FitCancelled(Exception):
    """Raised by ``fit`` when the progress callback asked to stop.

    The estimator is left unfitted: no learned attribute (ending in ``_``) is set.
    """


@dataclass(frozen=True)
class FitProgress:
    """One progress report of a running fit.

    Attributes
    ----------
    stage : str
        ``"start"``, ``"graph"`` (building a neighbour graph), ``"split"`` (training one
        split) or ``"done"``.
    done, total : int
        Splits finished and splits needed (``n_clusters - 1``).
    message : str
        A short sentence a person can read, e.g. "splitting node 3 (1,204 points)".
    node_id : int or None
        The node being split, when there is one.
    epoch : int
        Training epoch within the current split (0 outside training).
    """

    stage: str
    done: int
    total: int
    message: str
    node_id: int | None = None
    epoch: int = 0


class Reporter:
    """Sends progress to an optional callback and raises FitCancelled when it says stop."""

    def __init__(self, callback: Callable[[FitProgress], bool | None] | None, total: int):
        self._callback = callback
        self.total = total
        self.done = 0

    def __call__(self, stage: str, message: str, node_id: int | None = None, epoch: int = 0):
        if self._callback is None:
            return
        progress = FitProgress(stage, self.done, self.total, message, node_id, epoch)
        if self._callback(progress) is True:
            raise FitCancelled(f"fit cancelled during stage {stage!r}: {message}")
