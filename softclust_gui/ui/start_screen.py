"""The first screen: a drop zone, "Open folder...", detected cards, recent folders, a sample.

Cards are found by themselves: a timer (and a file-system watcher on the mount roots, where
there are any) looks for mounted volumes holding DCIM/ in a worker every few seconds.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QRectF, Qt, QTimer, Signal
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

from softclust_gui.imaging import CardVolume, find_card_volumes
from softclust_gui.ui.workers import Worker, WorkerContext, start

logger = logging.getLogger(__name__)

CARD_POLL_MS = 3000
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


def _find_cards(context: WorkerContext, mount_roots: list[Path] | None) -> list[CardVolume]:
    return find_card_volumes(mount_roots)


class CardWatcher(QObject):
    """Emits ``cards_changed(list[CardVolume])`` when a card is plugged in or removed."""

    cards_changed = Signal(list)

    def __init__(self, mount_roots: list[Path] | None = None, parent=None) -> None:
        super().__init__(parent)
        self.mount_roots = mount_roots
        self.cards: list[CardVolume] = []
        self._worker: Worker | None = None
        self.timer = QTimer(self)
        self.timer.setObjectName("cardPoll")
        self.timer.setInterval(CARD_POLL_MS)
        self.timer.timeout.connect(self.refresh)
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(self.refresh)

    def start(self) -> None:
        roots = self.mount_roots
        if roots is None:
            from softclust_gui.imaging.scan import default_mount_roots

            roots = default_mount_roots()
        existing = [str(r) for r in roots if Path(r).is_dir()]
        if existing:
            self.watcher.addPaths(existing)
        self.timer.start()
        self.refresh()

    def stop(self) -> None:
        self.timer.stop()
        if self._worker is not None:
            self._worker.cancel()

    def refresh(self) -> None:
        if self._worker is not None:
            return
        worker = Worker(_find_cards, self.mount_roots)
        worker.signals.result.connect(self._found)
        worker.signals.finished.connect(self._done)
        self._worker = worker
        start(worker)

    def _done(self) -> None:
        self._worker = None

    def _found(self, cards: list[CardVolume]) -> None:
        if cards != self.cards:
            logger.info("cards found: %s", [str(c.root) for c in cards])
            self.cards = cards
            self.cards_changed.emit(cards)


class CardRow(QFrame):
    """One detected card: its name and what can be done with it."""

    def __init__(self, card: CardVolume, parent=None) -> None:
        super().__init__(parent)
        self.card = card
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel(f"<b>Card {card.label}</b><br>{card.root}", self)
        self.sort_button = QPushButton("Sort this card", self)
        self.offload_button = QPushButton("Offload this card first...", self)
        self.offload_button.setToolTip(
            "Copy the whole card to a folder, checked, then sort the copy"
        )
        layout = QHBoxLayout(self)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.sort_button)
        layout.addWidget(self.offload_button)


class StartScreen(QWidget):
    """Drop zone, "Open folder...", cards, "Try the sample flight" and the recent folders."""

    folder_chosen = Signal(Path)
    open_requested = Signal()
    sample_requested = Signal()
    offload_requested = Signal(Path)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.drop_zone = DropZone(self)
        self.drop_zone.folder_dropped.connect(self.folder_chosen)

        self.open_button = QPushButton("Open folder...", self)
        self.open_button.setDefault(True)
        self.open_button.clicked.connect(self.open_requested)
        self.sample_button = QPushButton("Try the sample flight", self)
        self.sample_button.setToolTip("Sort a small set of photos that comes with the app")
        self.sample_button.clicked.connect(self.sample_requested)

        self.cards_box = QVBoxLayout()
        self.card_rows: list[CardRow] = []
        self.card_watcher = CardWatcher(parent=self)
        self.card_watcher.cards_changed.connect(self.set_cards)

        self.recent_title = QLabel("Recent", self)
        font = self.recent_title.font()
        font.setBold(True)
        self.recent_title.setFont(font)
        self.recent_list = QListWidget(self)
        self.recent_list.setObjectName("recentList")
        self.recent_list.itemActivated.connect(self._open_recent)
        self.recent_list.setToolTip("Opening a folder again resumes its saved sorting")
        self.recent_empty = QLabel("No recent folders yet.", self)
        self.recent_empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        self.message = QLabel(self)
        self.message.setObjectName("startMessage")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.sample_button)
        buttons.addStretch(1)

        side = QVBoxLayout()
        side.addWidget(self.recent_title)
        side.addWidget(self.recent_empty)
        side.addWidget(self.recent_list, 1)

        main = QVBoxLayout()
        main.addWidget(self.drop_zone, 1)
        main.addLayout(self.cards_box)
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

    def set_cards(self, cards: list[CardVolume]) -> None:
        for row in self.card_rows:
            self.cards_box.removeWidget(row)
            row.deleteLater()
        self.card_rows = []
        for card in cards:
            row = CardRow(card, self)
            row.sort_button.clicked.connect(
                lambda _=False, p=card.root: self.folder_chosen.emit(p)
            )
            row.offload_button.clicked.connect(
                lambda _=False, p=card.root: self.offload_requested.emit(p)
            )
            self.cards_box.addWidget(row)
            self.card_rows.append(row)

    def show_message(self, text: str) -> None:
        self.message.setText(text)

    def _open_recent(self, item: QListWidgetItem) -> None:
        self.folder_chosen.emit(Path(item.data(Qt.ItemDataRole.UserRole)))
