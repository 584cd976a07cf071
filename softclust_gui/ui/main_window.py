"""The main window: start screen, menus and the status bar."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QStackedWidget,
    QWidget,
)

from softclust_gui import APP_NAME, compute, recent
from softclust_gui.ui import about
from softclust_gui.ui.start_screen import StartScreen
from softclust_gui.ui.workers import Worker, WorkerContext, WorkerSlot, cancel_all, start

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".dng", ".heic", ".heif"}


def count_image_files(context: WorkerContext, folder: Path) -> int:
    """Count image files under ``folder`` by extension, skipping hidden entries.

    A quick first look only: it neither decodes nor checks the files.
    """
    total = 0
    for _root, dirs, files in os.walk(folder, onerror=lambda exc: logger.warning("%s", exc)):
        context.check_cancelled()
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        total += sum(
            1
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
        )
    return total


def detect_device(context: WorkerContext) -> tuple[str, str]:
    """The compute device's description and torch's version (importing torch is slow)."""
    import torch

    return compute.describe_device("auto").describe(), torch.__version__


class MainWindow(QMainWindow):
    folder_counted = Signal(Path, int)
    device_detected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_NAME)
        self.resize(1200, 800)
        self.setAcceptDrops(True)
        self.device_text = "detecting..."
        self.torch_version: str | None = None
        self.current_folder: Path | None = None
        self._count_slot = WorkerSlot(self)

        self.start_screen = StartScreen(self)
        self.start_screen.folder_chosen.connect(self.open_folder)
        self.start_screen.open_requested.connect(self.choose_folder)
        self.pages = QStackedWidget(self)
        self.pages.addWidget(self.start_screen)
        self.setCentralWidget(self.pages)

        self._build_actions()
        self._build_menus()
        self._build_status_bar()
        self.start_screen.set_recent(recent.load_recent())
        self._detect_device()

    # -- construction -------------------------------------------------------------------
    def _build_actions(self) -> None:
        self.open_action = QAction("&Open folder...", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self.choose_folder)
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action.triggered.connect(self.close)
        self.undo_action = QAction("&Undo", self)
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.undo_action.setEnabled(False)
        self.redo_action = QAction("&Redo", self)
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.redo_action.setEnabled(False)
        self.start_action = QAction("&Start screen", self)
        self.start_action.triggered.connect(self.show_start_screen)
        self.full_screen_action = QAction("&Full screen", self)
        self.full_screen_action.setShortcut(QKeySequence.StandardKey.FullScreen)
        self.full_screen_action.setCheckable(True)
        self.full_screen_action.toggled.connect(self._set_full_screen)
        self.about_action = QAction(f"&About {APP_NAME}", self)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self.show_about)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.file_menu = bar.addMenu("&File")
        self.file_menu.addAction(self.open_action)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)
        self.edit_menu = bar.addMenu("&Edit")
        self.edit_menu.addAction(self.undo_action)
        self.edit_menu.addAction(self.redo_action)
        self.view_menu = bar.addMenu("&View")
        self.view_menu.addAction(self.start_action)
        self.view_menu.addAction(self.full_screen_action)
        self.help_menu = bar.addMenu("&Help")
        self.help_menu.addAction(self.about_action)

    def _build_status_bar(self) -> None:
        self.device_label = QLabel(f"Device: {self.device_text}", self)
        self.device_label.setObjectName("deviceLabel")
        self.statusBar().addPermanentWidget(self.device_label)

    # -- device -------------------------------------------------------------------------
    def _detect_device(self) -> None:
        worker = Worker(detect_device)
        worker.signals.result.connect(self._on_device)
        worker.signals.error.connect(self._on_device_error)
        start(worker)

    def _on_device(self, found: tuple[str, str]) -> None:
        self.device_text, self.torch_version = found
        self.device_label.setText(f"Device: {self.device_text}")
        self.device_detected.emit(self.device_text)

    def _on_device_error(self, exc: Exception) -> None:
        self.device_text = "CPU (GPU check failed; see the log)"
        self.device_label.setText(f"Device: {self.device_text}")
        self.device_detected.emit(self.device_text)

    # -- folders ------------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            self.start_screen.show_message(
                f"{folder} is not a folder that can be opened. Choose a folder of images."
            )
            return
        self.current_folder = folder
        self.start_screen.show_message(f"Looking for images in {folder} ...")
        self.start_screen.set_recent(recent.remember(folder))
        worker = Worker(count_image_files, folder)
        worker.signals.result.connect(lambda total: self._on_counted(folder, total))
        worker.signals.error.connect(self._on_count_error)
        self._count_slot.start(worker)

    def _on_counted(self, folder: Path, total: int) -> None:
        noun = "image file" if total == 1 else "image files"
        text = f"{folder.name or folder}: {total} {noun}."
        if total == 0:
            text += " Choose a folder that holds photos (JPEG, PNG, TIFF, WebP, DNG)."
        self.start_screen.show_message(text)
        self.statusBar().showMessage(text, 10_000)
        self.folder_counted.emit(folder, total)

    def _on_count_error(self, exc: Exception) -> None:
        self.start_screen.show_message(f"Could not read the folder: {exc}")

    # -- drag and drop anywhere in the window -------------------------------------------
    def dragEnterEvent(self, event) -> None:
        self.start_screen.drop_zone.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        self.start_screen.drop_zone.dropEvent(event)

    # -- misc ---------------------------------------------------------------------------
    def show_start_screen(self) -> None:
        self.pages.setCurrentWidget(self.start_screen)

    def show_about(self) -> None:
        self._about_box = about.show_about(self, self.device_text, self.torch_version)

    def _set_full_screen(self, on: bool) -> None:
        if on:
            self.showFullScreen()
        else:
            self.showNormal()

    def closeEvent(self, event: QCloseEvent) -> None:
        cancel_all()
        super().closeEvent(event)
