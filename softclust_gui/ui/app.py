"""``softclust-gui [FOLDER]``: start the desktop app."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from softclust_gui import APP_NAME, __version__, logs, paths

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="softclust-gui", description="Open the SoftClust app."
    )
    parser.add_argument("folder", nargs="?", type=Path, help="a folder or card to open")
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log DEBUG to the console")
    return parser.parse_args(argv)


def show_unexpected_error(exc_type, exc, tb) -> None:
    """Log an uncaught exception and tell the user where the details are."""
    logger.critical("uncaught exception", exc_info=(exc_type, exc, tb))
    if QApplication.instance() is None:
        traceback.print_exception(exc_type, exc, tb)
        return
    box = QMessageBox(
        QMessageBox.Icon.Critical,
        f"{APP_NAME}: unexpected error",
        f"Something went wrong: {exc}",
    )
    box.setInformativeText(
        f"Your work is saved. Details are in the log file:\n{paths.log_file()}"
    )
    box.open()


def create_application(argv: list[str]) -> QApplication:
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationName(APP_NAME)
    icon = paths.resource("icons", "softclust.png")
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def _quit_on_signals(app: QApplication) -> QTimer:
    """Let Ctrl+C and SIGTERM close the app (Python sees signals only between events)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: app.quit())
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(250)
    return heartbeat


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logs.configure(verbose=args.verbose)
    logger.info("%s %s starting (frozen=%s)", APP_NAME, __version__, paths.is_frozen())
    sys.excepthook = show_unexpected_error
    app = create_application(sys.argv[:1])

    from softclust_gui.ui.main_window import MainWindow

    window = MainWindow()
    window.show()
    logger.info("window shown")  # the packaging smoke test times the start up to here
    heartbeat = _quit_on_signals(app)
    if args.folder is not None:
        window.open_folder(args.folder)
    code = app.exec()
    heartbeat.stop()
    logger.info("%s exiting with code %d", APP_NAME, code)
    return code
