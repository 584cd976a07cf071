"""Help > About: versions and the compute device."""

from __future__ import annotations

import platform

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QMessageBox, QWidget

from softclust_gui import APP_NAME, __version__, paths


def about_lines(device_text: str, torch_version: str | None) -> list[str]:
    """The facts the About box shows, one per line."""
    return [
        f"{APP_NAME} {__version__}",
        f"Python {platform.python_version()}",
        f"Qt {qVersion()} (PySide6 {pyside_version})",
        f"torch {torch_version or 'not loaded yet'}",
        f"Compute device: {device_text}",
        f"Log file: {paths.log_file()}",
    ]


def show_about(parent: QWidget, device_text: str, torch_version: str | None) -> QMessageBox:
    box = QMessageBox(parent)
    box.setWindowTitle(f"About {APP_NAME}")
    box.setIcon(QMessageBox.Icon.Information)
    box.setText(f"<b>{APP_NAME}</b> sorts field images into folders by how they look.")
    box.setInformativeText("\n".join(about_lines(device_text, torch_version)))
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box
