"""The first screen: a drop zone for folders and cards, "Open folder..." and recent folders."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

logger = logging.getLogger(__name__)

DROP_PROMPT = "Drop a folder or a card here"


def folders_from_drop(event: QDropEvent | QDragEnterEvent) -> list[Path]:
    """The local folders carried by a drag, in order; files and remote URLs are left out."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    folders = []
    for url in mime.urls():
        if url.isLocalFile():
            path = Path(url.toLocalFile())
            if path.is_dir():
                folders.append(path)
    return folders


class DropZone(QFrame):
    """A large dashed target that accepts folders dragged from the file manager."""

    folder_dropped = Signal(Path)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setAcceptDrops(True)
        self.setMinimumSize(420, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._hovering = False
        self.prompt = QLabel(DROP_PROMPT, self)
        self.prompt.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.prompt.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        self.prompt.setFont(font)
        hint = QLabel("JPEG, PNG, TIFF, WebP and DNG photos, in any sub-folder", self)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.prompt)
        layout.addWidget(hint)
        layout.addStretch(1)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if folders_from_drop(event):
            event.acceptProposedAction()
            self._set_hovering(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:
        self._set_hovering(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_hovering(False)
        folders = folders_from_drop(event)
        if not folders:
            event.ignore()
            return
        event.acceptProposedAction()
        if len(folders) > 1:
            logger.info("%d folders dropped; opening the first: %s", len(folders), folders[0])
        self.folder_dropped.emit(folders[0])

    def _set_hovering(self, hovering: bool) -> None:
        self._hovering = hovering
        self.update()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        role = QPalette.ColorRole.Highlight if self._hovering else QPalette.ColorRole.Mid
        pen = QPen(palette.color(role), 2, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        if self._hovering:
            fill = palette.color(QPalette.ColorRole.Highlight)
            fill.setAlpha(30)
            painter.setBrush(fill)
        rect = QRectF(self.rect()).adjusted(6, 6, -6, -6)
        painter.drawRoundedRect(rect, 14, 14)


class StartScreen(QWidget):
    """Drop zone, "Open folder..." and the recent folders."""

    folder_chosen = Signal(Path)
    open_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.drop_zone = DropZone(self)
        self.drop_zone.folder_dropped.connect(self.folder_chosen)

        self.open_button = QPushButton("Open folder...", self)
        self.open_button.setDefault(True)
        self.open_button.clicked.connect(self.open_requested)

        self.recent_title = QLabel("Recent", self)
        font = self.recent_title.font()
        font.setBold(True)
        self.recent_title.setFont(font)
        self.recent_list = QListWidget(self)
        self.recent_list.setObjectName("recentList")
        self.recent_list.itemActivated.connect(self._open_recent)
        self.recent_empty = QLabel("No recent folders yet.", self)
        self.recent_empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        self.message = QLabel(self)
        self.message.setObjectName("startMessage")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)

        side = QVBoxLayout()
        side.addWidget(self.recent_title)
        side.addWidget(self.recent_empty)
        side.addWidget(self.recent_list, 1)

        main = QVBoxLayout()
        main.addWidget(self.drop_zone, 1)
        main.addLayout(buttons)
        main.addWidget(self.message)

        layout = QHBoxLayout(self)
        layout.addLayout(main, 3)
        layout.addLayout(side, 1)

    def set_recent(self, folders: list[Path]) -> None:
        self.recent_list.clear()
        for folder in folders:
            item = QListWidgetItem(folder.name or str(folder))
            item.setToolTip(str(folder))
            item.setData(Qt.ItemDataRole.UserRole, str(folder))
            self.recent_list.addItem(item)
        self.recent_empty.setVisible(not folders)

    def show_message(self, text: str) -> None:
        self.message.setText(text)

    def _open_recent(self, item: QListWidgetItem) -> None:
        self.folder_chosen.emit(Path(item.data(Qt.ItemDataRole.UserRole)))
