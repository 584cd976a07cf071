"""The main window: start screen, processing and main view, menus and the status bar."""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressDialog,
    QStackedWidget,
    QWidget,
)

from softclust_gui import APP_NAME, compute, paths, recent
from softclust_gui.session import Session, offload
from softclust_gui.ui import about
from softclust_gui.ui.errors import problem_box, unexpected_error_box
from softclust_gui.ui.export_dialog import ExportDialog
from softclust_gui.ui.main_view import MainView, ProcessingPage
from softclust_gui.ui.start_screen import StartScreen
from softclust_gui.ui.thumbnails import ThumbnailLoader
from softclust_gui.ui.workers import Worker, WorkerContext, WorkerSlot, cancel_all, start
from softclust_gui.ui.workflow import SortJob, SortSettings

logger = logging.getLogger(__name__)

SAMPLE_FLIGHT = "sample-flight"


def detect_device(context: WorkerContext) -> tuple[str, str]:
    """The compute device's description and torch's version.

    Also imports the engine (torch, scikit-learn) now, while the start screen waits for
    a folder: loading their compiled modules holds the GIL for a second or more, which
    would otherwise stall the window in the middle of the first sorting.
    """
    import torch

    import softclust_gui.engine  # noqa: F401

    return compute.describe_device("auto").describe(), torch.__version__


def _offload_task(context: WorkerContext, card: Path, dest: Path, stop: threading.Event):
    def on_progress(progress) -> bool:
        context.progress(progress)
        return stop.is_set()

    return offload(card, dest, progress=on_progress)


class MainWindow(QMainWindow):
    folder_counted = Signal(Path, int)  # images found by the scan of an opened folder
    device_detected = Signal(str)
    sorted_ready = Signal(object)  # the Session, once its tree of splits is shown
    job_stopped = Signal(str)

    def __init__(
        self, parent: QWidget | None = None, settings: SortSettings | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_NAME)
        self.resize(1280, 820)
        self.setAcceptDrops(True)
        self.device_text = "detecting..."
        self.torch_version: str | None = None
        self.current_folder: Path | None = None
        self.export_dialog: ExportDialog | None = None
        self._boxes: list = []

        self.loader = ThumbnailLoader(parent=self)
        self.job = SortJob(self)
        if settings is not None:
            self.job.settings = settings
        self.start_screen = StartScreen(self)
        self.start_screen.folder_chosen.connect(self.open_folder)
        self.start_screen.open_requested.connect(self.choose_folder)
        self.start_screen.sample_requested.connect(self.open_sample_flight)
        self.start_screen.offload_requested.connect(self.offload_card)
        self.processing = ProcessingPage(self.loader, self)
        self.processing.panel.cancel_requested.connect(self.job.cancel)
        self.main_view = MainView(self.loader, self)
        self.main_view.settings_bar.show_settings(self.job.settings)
        self.main_view.settings_bar.changed.connect(self._settings_changed)
        self.main_view.settings_bar.cancel_button.clicked.connect(self.job.cancel)
        self.main_view.split_requested.connect(self.job.cluster)
        self.main_view.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.main_view.session_changed.connect(self._update_undo)
        self.pages = QStackedWidget(self)
        for page in (self.start_screen, self.processing, self.main_view):
            self.pages.addWidget(page)
        self.setCentralWidget(self.pages)

        self._connect_job()
        self._build_actions()
        self._build_menus()
        self._build_status_bar()
        self.start_screen.set_recent(recent.load_recent())
        self.start_screen.card_watcher.start()
        self._detect_device()

    # -- construction -------------------------------------------------------------------
    def _connect_job(self) -> None:
        job = self.job
        job.stage.connect(self._show_stage)
        job.scanned.connect(self._scanned)
        job.thumbnails.connect(self.loader.offer_many)
        job.skipped.connect(self.processing.panel.add_skipped)
        job.notice.connect(self._notice)
        job.session_ready.connect(self._session_ready)
        job.clustered.connect(self._clustered)
        job.stopped.connect(self._job_stopped)
        job.failed.connect(self._job_failed)

    def _build_actions(self) -> None:
        self.open_action = QAction("&Open folder...", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self.choose_folder)
        self.export_action = QAction("&Export...", self)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.triggered.connect(self.open_export)
        self.export_action.setEnabled(False)
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action.triggered.connect(self.close)
        self.undo_action = QAction("&Undo", self)
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.undo_action.setEnabled(False)
        self.undo_action.triggered.connect(self.undo)
        self.redo_action = QAction("&Redo", self)
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.redo_action.setEnabled(False)
        self.redo_action.triggered.connect(self.redo)
        self.start_action = QAction("&Start screen", self)
        self.start_action.triggered.connect(self.show_start_screen)
        self.full_screen_action = QAction("&Full screen", self)
        self.full_screen_action.setShortcut(QKeySequence.StandardKey.FullScreen)
        self.full_screen_action.setCheckable(True)
        self.full_screen_action.toggled.connect(self._set_full_screen)
        self.log_action = QAction("Show the &log folder", self)
        self.log_action.triggered.connect(self._show_log_folder)
        self.about_action = QAction(f"&About {APP_NAME}", self)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self.show_about)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.file_menu = bar.addMenu("&File")
        self.file_menu.addAction(self.open_action)
        self.file_menu.addAction(self.export_action)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)
        self.edit_menu = bar.addMenu("&Edit")
        self.edit_menu.addAction(self.undo_action)
        self.edit_menu.addAction(self.redo_action)
        self.edit_menu.addSeparator()
        for action in self.main_view.edit_actions:
            self.edit_menu.addAction(action)
        self.view_menu = bar.addMenu("&View")
        self.view_menu.addAction(self.start_action)
        self.view_menu.addAction(self.full_screen_action)
        self.help_menu = bar.addMenu("&Help")
        self.help_menu.addAction(self.log_action)
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
        # torch and the engine are loaded now: their million long-lived objects would make
        # every full garbage collection stall the window for 100-300 ms. Set them aside.
        gc.freeze()
        logger.debug("%d objects set aside from garbage collection", gc.get_freeze_count())
        self.device_label.setText(f"Device: {self.device_text}")
        self.processing.panel.set_device(self.device_text)
        self.device_detected.emit(self.device_text)

    def _on_device_error(self, exc: Exception) -> None:
        logger.warning("device check failed: %s", exc)
        self.device_text = "CPU (GPU check failed; see the log)"
        self._on_device((self.device_text, self.torch_version))

    # -- opening folders ----------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_folder(Path(folder))

    def open_sample_flight(self) -> None:
        self.open_folder(paths.resource(SAMPLE_FLIGHT), remember=False)

    def open_folder(self, folder: Path, remember: bool = True) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            self.start_screen.show_message(
                f"{folder} is not a folder that can be opened. Choose a folder of images."
            )
            return
        self.current_folder = folder
        if remember:
            self.start_screen.set_recent(recent.remember(folder))
        self.main_view.set_session(None)
        self.export_action.setEnabled(False)
        self._update_undo()
        self.processing.panel.reset(f"Sorting {folder.name or folder}")
        self.processing.panel.set_device(self.device_text)
        self.processing.grid.model.set_images([])
        self.start_screen.show_message(f"Looking for images in {folder} ...")
        self.pages.setCurrentWidget(self.processing)
        self.job.open(folder)

    def _scanned(self, keys: list[str]) -> None:
        text = f"{self.current_folder.name or self.current_folder}: {len(keys):,} image files."
        self.start_screen.show_message(text)
        self.statusBar().showMessage(text, 10_000)
        self.processing.grid.model.set_images(keys)
        self.folder_counted.emit(self.current_folder, len(keys))

    def _show_stage(self, text: str, done: int, total: int, rate: float, eta: float) -> None:
        eta_s = None if eta < 0 else eta
        unit = "splits" if text.startswith(("Sorting", "splitting", "Splitting")) else "images"
        self.processing.panel.show_stage(text, done, total, rate or None, eta_s, unit)
        if self.pages.currentWidget() is self.main_view:
            bar = self.main_view.settings_bar
            bar.busy.setText(f"{text} ({done} of {total})" if total else text)
            bar.cancel_button.setVisible(True)

    def _notice(self, text: str) -> None:
        self.statusBar().showMessage(text, 15_000)
        self.processing.panel.stage.setToolTip(text)
        logger.info("notice: %s", text)

    def _session_ready(self, session: Session) -> None:
        self.export_action.setEnabled(True)

    def _clustered(self, session: Session) -> None:
        if self.main_view.session is not session:
            self.main_view.set_session(session)
        self.pages.setCurrentWidget(self.main_view)
        self._idle()
        self.main_view.tree.setFocus()
        self.sorted_ready.emit(session)

    def _idle(self) -> None:
        bar = self.main_view.settings_bar
        bar.busy.setText("")
        bar.cancel_button.setVisible(False)

    def _job_stopped(self, text: str) -> None:
        self._idle()
        self.statusBar().showMessage(text, 15_000)
        if self.main_view.session is None:
            self.start_screen.show_message(text)
            self.pages.setCurrentWidget(self.start_screen)
        self.job_stopped.emit(text)

    def _job_failed(self, what: str, exc: Exception) -> None:
        self._job_stopped(f"{what} failed: {exc}")
        self._boxes.append(unexpected_error_box(self, what, exc))

    def _settings_changed(self, settings: SortSettings) -> None:
        self.job.change_settings(settings)

    # -- editing ------------------------------------------------------------------------
    def undo(self) -> None:
        session = self.main_view.session
        if session is not None and session.can_undo:
            session.undo()

    def redo(self) -> None:
        session = self.main_view.session
        if session is not None and session.can_redo:
            session.redo()

    def _update_undo(self) -> None:
        session = self.main_view.session
        can_undo = session is not None and session.can_undo
        can_redo = session is not None and session.can_redo
        self.undo_action.setEnabled(can_undo)
        self.redo_action.setEnabled(can_redo)
        self.undo_action.setText(f"&Undo {session.undo_label}" if can_undo else "&Undo")
        self.redo_action.setText(f"&Redo {session.redo_label}" if can_redo else "&Redo")
        if session is not None and session.save_error:
            self.statusBar().showMessage(f"Not saved: {session.save_error}", 15_000)

    # -- export and offload -------------------------------------------------------------
    def open_export(self) -> ExportDialog | None:
        session = self.main_view.session or self.job.session
        if session is None:
            return None
        self.export_dialog = ExportDialog(session, self)
        self.export_dialog.open()
        return self.export_dialog

    def offload_card(self, card: Path) -> None:
        dest = QFileDialog.getExistingDirectory(self, f"Offload the card {card.name} to")
        if dest:
            self.start_offload(card, Path(dest))

    def start_offload(self, card: Path, dest: Path) -> Worker:
        """Copy the card to ``dest`` (verified), then sort the copy."""
        stop = threading.Event()
        dialog = QProgressDialog(f"Offloading {card} to {dest}...", "Cancel", 0, 0, self)
        dialog.setWindowTitle("Offload the card")
        dialog.canceled.connect(stop.set)
        dialog.show()
        worker = Worker(_offload_task, card, dest, stop)
        worker.signals.progress.connect(
            lambda p: (dialog.setMaximum(max(p.bytes_total, 1)), dialog.setValue(p.bytes_done))
        )
        worker.signals.result.connect(lambda report: self._offloaded(dialog, report))
        worker.signals.error.connect(lambda exc: self._job_failed("The offload", exc))
        worker.signals.finished.connect(dialog.deleteLater)
        self._offload_slot = getattr(self, "_offload_slot", None) or WorkerSlot(self)
        return self._offload_slot.start(worker)

    def _offloaded(self, dialog: QProgressDialog, report) -> None:
        dialog.reset()
        if report.complete:
            self.statusBar().showMessage(report.summary().splitlines()[0], 15_000)
            self.open_folder(report.dest)
            return
        self._boxes.append(problem_box(self, "The offload did not finish", report.summary()))

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

    def _show_log_folder(self) -> None:
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.log_dir())))

    def _set_full_screen(self, on: bool) -> None:
        if on:
            self.showFullScreen()
        else:
            self.showNormal()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.start_screen.card_watcher.stop()
        self.loader.cancel()
        self.job.close()
        cancel_all()
        super().closeEvent(event)
