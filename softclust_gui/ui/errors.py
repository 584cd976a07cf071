"""How errors reach the user: a short sentence in a dialog, the details in the log."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

from softclust_gui import APP_NAME, paths

logger = logging.getLogger(__name__)


def unexpected_error_box(parent: QWidget | None, what: str, exc: BaseException) -> QMessageBox:
    """Show (non-modally) that ``what`` failed unexpectedly, and where the log is."""
    logger.error("%s failed: %s", what, exc, exc_info=(type(exc), exc, exc.__traceback__))
    box = QMessageBox(
        QMessageBox.Icon.Critical,
        f"{APP_NAME}: unexpected error",
        f"{what} failed: {exc}",
        QMessageBox.StandardButton.Ok,
        parent,
    )
    box.setObjectName("unexpectedErrorBox")
    box.setInformativeText(
        f"Your work so far is saved. Details are in the log file:\n{paths.log_file()}"
    )
    box.open()
    return box


def problem_box(parent: QWidget | None, title: str, text: str) -> QMessageBox:
    """Show a plain-words problem the user can act on (no traceback, not an app bug)."""
    box = QMessageBox(
        QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent
    )
    box.setObjectName("problemBox")
    box.open()
    return box
