"""Qt test fixtures: a test fails when it leaves a worker thread or a timer running."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QEvent, QThreadPool, QTimer
from PySide6.QtWidgets import QApplication

from softclust_gui.ui.workers import cancel_all

GRACE_MS = 2000


def _stop_active_timers() -> list[str]:
    """Stop every running timer owned by the app or a window; name each one stopped."""
    app = QApplication.instance()
    if app is None:
        return []
    found = []
    for owner in [app, *app.topLevelWidgets()]:
        for timer in owner.findChildren(QTimer):
            if timer.isActive():
                timer.stop()  # so that one leak does not fail the next tests too
                found.append(f"{type(owner).__name__}/{timer.objectName() or 'timer'}")
    return found


@pytest.fixture(autouse=True)
def no_leftover_work(qapp):
    """Fail the test if a pool thread is still busy or a timer still runs after it.

    Widgets are closed and deleted first, so the timers they own go with them; what is
    still running after that was leaked by the code under test.
    """
    threads_before = set(threading.enumerate())
    yield
    # A worker whose result has just arrived may still be returning: allow it a moment.
    pool = QThreadPool.globalInstance()
    pool.waitForDone(GRACE_MS)
    busy = pool.activeThreadCount()
    cancel_all()
    for widget in QApplication.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()
    timers = _stop_active_timers()
    pool.waitForDone(5000)
    # Qt's idle pool threads appear to Python as "dummy" threads; the pool check covers them.
    new_threads = [
        t
        for t in threading.enumerate()
        if t not in threads_before
        and t.is_alive()
        and not isinstance(t, threading._DummyThread)
    ]
    assert busy == 0, f"{busy} worker thread(s) still running at the end of the test"
    assert not timers, f"timers still running at the end of the test: {timers}"
    assert not new_threads, f"threads left running: {[t.name for t in new_threads]}"
