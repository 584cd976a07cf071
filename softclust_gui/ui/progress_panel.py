"""The progress panel: stage, counts, images/s, time left, device, Cancel, skipped files."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


def format_duration(seconds: float | None) -> str:
    """'about 2 min 10 s' style, or '' when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"about {seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"about {minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes:02d} min"


class ProgressPanel(QWidget):
    """Shows one long run; ``cancel_requested`` when the user presses Cancel."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(self)
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.stage = QLabel(self)
        self.stage.setObjectName("progressStage")
        self.bar = QProgressBar(self)
        self.counts = QLabel(self)
        self.rate = QLabel(self)
        self.eta = QLabel(self)
        self.device = QLabel(self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self._cancel)
        self.skipped_title = QLabel(self)
        self.skipped = QListWidget(self)
        self.skipped.setObjectName("skippedList")
        self.skipped.setMaximumHeight(110)

        facts = QGridLayout()
        for column, (label, field) in enumerate(
            [
                ("Images", self.counts),
                ("Speed", self.rate),
                ("Time left", self.eta),
                ("Device", self.device),
            ]
        ):
            facts.addWidget(QLabel(f"<b>{label}</b>", self), 0, column)
            facts.addWidget(field, 1, column)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.stage)
        layout.addWidget(self.bar)
        layout.addLayout(facts)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.skipped_title)
        layout.addWidget(self.skipped)
        self.reset("")

    def reset(self, title: str) -> None:
        self.title.setText(title)
        self.stage.setText("Starting...")
        self.bar.setRange(0, 0)
        for field in (self.counts, self.rate, self.eta):
            field.setText("-")
        self.skipped.clear()
        self.skipped_title.setText("")
        self.skipped.setVisible(False)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")

    def set_device(self, text: str) -> None:
        self.device.setText(text)

    def show_stage(
        self,
        stage: str,
        done: int = 0,
        total: int = 0,
        rate: float | None = None,
        eta_s: float | None = None,
        unit: str = "images",
    ) -> None:
        self.stage.setText(stage)
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
            self.counts.setText(f"{done:,} of {total:,} {unit}")
        else:
            self.bar.setRange(0, 0)
            self.counts.setText(f"{done:,} {unit}" if done else "-")
        self.rate.setText(f"{rate:.1f} {unit}/s" if rate else "-")
        self.eta.setText(format_duration(eta_s) or "-")

    def add_skipped(self, items) -> None:
        """``items``: objects with ``path`` and ``reason`` (SkippedFile)."""
        for item in items:
            self.skipped.addItem(f"{item.path.name}: {item.reason}")
            self.skipped.item(self.skipped.count() - 1).setToolTip(str(item.path))
        count = self.skipped.count()
        self.skipped.setVisible(count > 0)
        self.skipped_title.setText(
            f"{count} file{'s' * (count != 1)} skipped (never changed):" if count else ""
        )

    def _cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling...")
        self.cancel_requested.emit()
