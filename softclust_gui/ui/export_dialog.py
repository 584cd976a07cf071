"""The export dialog: where, copy or move, nested or flat, a preview, progress, a summary."""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from softclust_gui.session import ExportReport, Session, TransferProgress, export
from softclust_gui.session.export import plan_folders
from softclust_gui.ui.errors import unexpected_error_box
from softclust_gui.ui.workers import Worker, WorkerContext, WorkerSlot

logger = logging.getLogger(__name__)


def folder_counts(session: Session, flat: bool) -> dict[tuple[str, ...], int]:
    """Images per export folder (relative parts, as they will be written on disk)."""
    items = session.export_items(flat=flat)
    mapping = plan_folders({item.folder for item in items})
    return dict(Counter(mapping[item.folder] for item in items))


def destination_problem(dest: str, source: Path) -> str:
    """Why ``dest`` cannot take the export, in plain words; '' when it can."""
    if not dest.strip():
        return "Choose a folder to export to."
    target = Path(dest).expanduser()
    out, src = os.path.realpath(target), os.path.realpath(source)
    if out == src or out.startswith(src.rstrip(os.sep) + os.sep):
        return f"{target} is inside the images' folder {source}: choose a folder outside it."
    if target.exists() and not target.is_dir():
        return f"{target} is a file, not a folder: choose a folder."
    return ""


def _run_export(context: WorkerContext, items, dest: Path, move: bool, stop: threading.Event):
    def on_progress(progress: TransferProgress) -> bool:
        context.progress(progress)
        return stop.is_set()

    return export(items, dest, move=move, progress=on_progress)


def summary_text(report: ExportReport) -> str:
    """What happened, in a few lines: counts first, then every file left behind and why."""
    images = sum(1 for r in report.exported if r.item is not None and r.source == r.item.source)
    head = f"{images:,} image{'s' * (images != 1)} exported to {report.dest}."
    if report.complete:
        head += " Every copy was checked byte for byte."
    return head + "\n" + report.summary()


class ExportDialog(QDialog):
    """Export the session's clusters to folders; ``finished_export(report)`` at the end."""

    finished_export = Signal(object)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle("Export sorted folders")
        self.resize(640, 560)
        self.session = session
        self.report: ExportReport | None = None
        self._stop = threading.Event()
        self._slot = WorkerSlot(self)

        self.dest_edit = QLineEdit(self)
        self.dest_edit.setPlaceholderText("Folder to export to")
        self.dest_edit.textChanged.connect(self._check)
        browse = QPushButton("Choose...", self)
        browse.clicked.connect(self._browse)
        self.copy_radio = QRadioButton("Copy (the originals stay where they are)", self)
        self.move_radio = QRadioButton(
            "Move (each original is removed after its copy is checked)", self
        )
        self.nested_radio = QRadioButton("Nested, as the tree of splits", self)
        self.flat_radio = QRadioButton("Flat, one folder per cluster", self)
        # Grouped before any is checked: radios that share a parent are otherwise one
        # exclusive set, and checking "Nested" would uncheck "Copy".
        self._groups = [QButtonGroup(self), QButtonGroup(self)]
        for radio in (self.copy_radio, self.move_radio):
            self._groups[0].addButton(radio)
        for radio in (self.nested_radio, self.flat_radio):
            self._groups[1].addButton(radio)
        self.copy_radio.setChecked(True)
        self.nested_radio.setChecked(True)
        self.nested_radio.toggled.connect(self._fill_preview)
        self.preview = QTreeWidget(self)
        self.preview.setObjectName("exportPreview")
        self.preview.setHeaderLabels(["Folder", "Images"])
        self.problem = QLabel(self)
        self.problem.setObjectName("exportProblem")
        self.problem.setWordWrap(True)
        self.bar = QProgressBar(self)
        self.bar.setVisible(False)
        self.summary = QPlainTextEdit(self)
        self.summary.setObjectName("exportSummary")
        self.summary.setReadOnly(True)
        self.summary.setVisible(False)
        self.export_button = QPushButton("Export", self)
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self._cancel)
        self.open_button = QPushButton("Open folder", self)
        self.open_button.setVisible(False)
        self.open_button.clicked.connect(self._open_folder)

        where = QHBoxLayout()
        where.addWidget(self.dest_edit, 1)
        where.addWidget(browse)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Destination</b>", self))
        layout.addLayout(where)
        layout.addWidget(self.copy_radio)
        layout.addWidget(self.move_radio)
        layout.addWidget(self.nested_radio)
        layout.addWidget(self.flat_radio)
        layout.addWidget(QLabel("<b>Folders that will be written</b>", self))
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.problem)
        layout.addWidget(self.bar)
        layout.addWidget(self.summary, 1)
        layout.addLayout(buttons)
        self._fill_preview()
        self._check()

    # -- set-up ------------------------------------------------------------------------
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to")
        if folder:
            self.dest_edit.setText(folder)

    def _fill_preview(self, *args) -> None:
        self.preview.clear()
        counts = folder_counts(self.session, self.flat_radio.isChecked())
        items: dict[tuple[str, ...], QTreeWidgetItem] = {}
        for folder in sorted(counts):
            for depth in range(1, len(folder) + 1):
                part = folder[:depth]
                if part in items:
                    continue
                parent = items.get(part[:-1])
                item = QTreeWidgetItem([part[-1], ""])
                (parent.addChild(item) if parent else self.preview.addTopLevelItem(item))
                items[part] = item
        # A folder's count is every image at or below it; the column is right-aligned.
        for part, item in items.items():
            below = sum(n for folder, n in counts.items() if folder[: len(part)] == part)
            item.setText(1, f"{below:,}")
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
        if () in counts:
            top = QTreeWidgetItem(["(the export folder itself)", f"{counts[()]:,}"])
            top.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
            self.preview.insertTopLevelItem(0, top)
        self.preview.expandAll()
        self.preview.resizeColumnToContents(0)
        self.preview.setColumnWidth(0, self.preview.columnWidth(0) + 24)
        self.total_images = sum(counts.values())

    def _check(self, *args) -> str:
        problem = destination_problem(self.dest_edit.text(), self.session.source)
        if not problem and not self.total_images:
            problem = "Every image is excluded: there is nothing to export."
        self.problem.setText(problem)
        self.export_button.setEnabled(not problem and self.report is None)
        return problem

    # -- the run -----------------------------------------------------------------------
    def start_export(self) -> None:
        if self._check() or self._slot.current is not None:
            return
        dest = Path(self.dest_edit.text()).expanduser()
        items = self.session.export_items(flat=self.flat_radio.isChecked())
        self.export_button.setEnabled(False)
        self.bar.setVisible(True)
        self.bar.setRange(0, 0)
        self.problem.setText("Exporting...")
        worker = Worker(_run_export, items, dest, self.move_radio.isChecked(), self._stop)
        worker.signals.progress.connect(self._progress)
        worker.signals.result.connect(self._done)
        worker.signals.error.connect(self._failed)
        self._slot.start(worker)

    def _progress(self, progress: TransferProgress) -> None:
        self.bar.setRange(0, max(progress.bytes_total, 1))
        self.bar.setValue(progress.bytes_done)
        self.problem.setText(f"{progress.files_done:,} of {progress.files_total:,} files")

    def _done(self, report: ExportReport) -> None:
        self.report = report
        self.bar.setVisible(False)
        if report.cancelled:
            self.problem.setText("Export cancelled. What was copied is complete and checked.")
        elif report.stopped:
            self.problem.setText(f"The export stopped: {report.stopped}")
        elif report.not_exported:
            self.problem.setText("Some files were not exported; see below.")
        else:
            self.problem.setText("Export finished.")
        self.summary.setPlainText(summary_text(report))
        self.summary.setVisible(True)
        self.open_button.setVisible(True)
        self.cancel_button.setText("Close")
        self.cancel_button.setEnabled(True)
        self.finished_export.emit(report)

    def _failed(self, exc: Exception) -> None:
        self.bar.setVisible(False)
        self.problem.setText("The export failed unexpectedly; nothing was overwritten.")
        self._error_box = unexpected_error_box(self, "The export", exc)
        self.cancel_button.setText("Close")

    def _cancel(self) -> None:
        if self._slot.current is not None:
            self._stop.set()
            self.cancel_button.setEnabled(False)
            self.problem.setText("Cancelling after the current file...")
            return
        self.reject()

    def _open_folder(self) -> None:
        if self.report is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.report.dest)))

    def done(self, result: int) -> None:
        if self._slot.current is not None:  # never leave an export running unseen
            self._stop.set()
            return
        super().done(result)
