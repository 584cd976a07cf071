"""The leftover-work fixture itself: it must fail tests that leak a timer or a worker."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

LEAKY_TESTS = """
import time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from softclust_gui.ui.workers import Worker, start

def test_leaks_a_timer(qapp):
    timer = QTimer(QApplication.instance())
    timer.start(1000)

def _spin_until_cancelled(context):
    while not context.cancelled:
        time.sleep(0.02)

def test_leaks_a_worker(qapp):
    start(Worker(_spin_until_cancelled))

def test_clean(qapp):
    timer = QTimer(QApplication.instance())
    timer.start(1000)
    timer.stop()
"""


def test_fixture_fails_leaky_tests(pytester):
    conftest = Path(__file__).with_name("conftest.py").read_text(encoding="utf-8")
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_leaky=LEAKY_TESTS)
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(["*timers still running at the end of the test*"])
    result.stdout.fnmatch_lines(["*1 worker thread(s) still running*"])
