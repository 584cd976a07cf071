"""The thumbnail grid: a list model of images, a delegate that paints them, and a zoom."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QSlider,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from softclust_gui.ui.thumbnails import ThumbnailLoader

logger = logging.getLogger(__name__)

NO_PARENT = QModelIndex()  # the invalid index: "top level" for item models

IMAGE_IDS_MIME = "application/x-softclust-image-ids"
KeyRole = Qt.ItemDataRole.UserRole + 1  # the thumbnail key (the file path)
ImageIdRole = Qt.ItemDataRole.UserRole + 2
ExcludedRole = Qt.ItemDataRole.UserRole + 3
MIN_ZOOM, MAX_ZOOM, DEFAULT_ZOOM = 64, 256, 128


def ids_from_mime(mime: QMimeData) -> list[int]:
    """The image ids carried by a drag from the grid, or [] for anything else."""
    if not mime.hasFormat(IMAGE_IDS_MIME):
        return []
    try:
        return [int(i) for i in json.loads(bytes(mime.data(IMAGE_IDS_MIME)).decode())]
    except (ValueError, TypeError):
        return []


class ImageGridModel(QAbstractListModel):
    """Images as rows: a key (path) each, and optionally the session's image id.

    ``is_excluded`` tells which image ids are left out of the export (drawn dimmed).
    """

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.keys: list[str] = []
        self.names: list[str] = []
        self.image_ids: list[int] | None = None
        self.is_excluded: Callable[[int], bool] = lambda _id: False
        self._rows: dict[str, int] = {}
        loader.ready.connect(self._thumbnail_ready)

    def set_images(self, keys: Sequence[str], image_ids: Sequence[int] | None = None) -> None:
        self.beginResetModel()
        self.keys = list(keys)
        self.names = [key.replace("\\", "/").rsplit("/", 1)[-1] for key in self.keys]
        self.image_ids = list(image_ids) if image_ids is not None else None
        self._rows = {key: row for row, key in enumerate(self.keys)}
        self.endResetModel()

    def append(self, key: str) -> None:
        row = len(self.keys)
        self.beginInsertRows(QModelIndex(), row, row)
        self.keys.append(key)
        self.names.append(key.replace("\\", "/").rsplit("/", 1)[-1])
        self._rows[key] = row
        self.endInsertRows()

    def row_of(self, key: str) -> int | None:
        return self._rows.get(key)

    def refresh_marks(self) -> None:
        if self.keys:
            self.dataChanged.emit(self.index(0), self.index(len(self.keys) - 1), [ExcludedRole])

    def rowCount(self, parent=NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self.keys)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        row = index.row()
        if not index.isValid() or row >= len(self.keys):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.names[row]
        if role == Qt.ItemDataRole.DecorationRole:
            return self.loader.get(self.keys[row])
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.keys[row]
        if role == KeyRole:
            return self.keys[row]
        if role == ImageIdRole:
            return self.image_ids[row] if self.image_ids is not None else None
        if role == ExcludedRole:
            return self.image_ids is not None and self.is_excluded(self.image_ids[row])
        return None

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        if index.isValid() and self.image_ids is not None:
            base |= Qt.ItemFlag.ItemIsDragEnabled
        return base

    def mimeTypes(self) -> list[str]:
        return [IMAGE_IDS_MIME]

    def mimeData(self, indexes) -> QMimeData:
        mime = QMimeData()
        ids = sorted({self.image_ids[i.row()] for i in indexes if i.isValid()})
        mime.setData(IMAGE_IDS_MIME, json.dumps(ids).encode())
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def _thumbnail_ready(self, key: str) -> None:
        row = self._rows.get(key)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class ThumbnailDelegate(QStyledItemDelegate):
    """A square cell: the thumbnail fitted inside, the file name under it."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.cell = DEFAULT_ZOOM

    def sizeHint(self, option, index) -> QSize:
        return QSize(self.cell + 12, self.cell + option.fontMetrics.height() + 14)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        painter.save()
        rect = option.rect.adjusted(3, 3, -3, -3)
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(rect, palette.color(QPalette.ColorRole.Highlight))
        image_rect = QRect(rect.left() + 3, rect.top() + 3, rect.width() - 6, self.cell)
        image = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(image, QImage) and not image.isNull():
            target = _fit(image.size(), image_rect)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(target, image)
        else:
            painter.fillRect(
                image_rect.adjusted(8, 8, -8, -8), palette.color(QPalette.ColorRole.Mid)
            )
        if index.data(ExcludedRole):
            painter.fillRect(image_rect, QColor(0, 0, 0, 140))
            painter.setPen(QColor("white"))
            painter.drawText(image_rect, Qt.AlignmentFlag.AlignCenter, "excluded")
        text_rect = QRect(
            rect.left(),
            image_rect.bottom() + 4,
            rect.width(),
            rect.bottom() - image_rect.bottom() - 4,
        )
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(palette.color(role))
        name = option.fontMetrics.elidedText(
            index.data(Qt.ItemDataRole.DisplayRole) or "",
            Qt.TextElideMode.ElideMiddle,
            text_rect.width() - 4,
        )
        painter.drawText(
            text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, name
        )
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRect(rect.adjusted(0, 0, -1, -1))
        painter.restore()


def _fit(size: QSize, box: QRect) -> QRect:
    """The largest rectangle of ``size``'s aspect ratio centred in ``box``."""
    if size.width() <= 0 or size.height() <= 0:
        return box
    scale = min(box.width() / size.width(), box.height() / size.height())
    width, height = int(size.width() * scale), int(size.height() * scale)
    return QRect(
        box.left() + (box.width() - width) // 2,
        box.top() + (box.height() - height) // 2,
        width,
        height,
    )


class GridView(QListView):
    """Icon-mode list view; Space or double-click asks for a large preview."""

    preview_requested = Signal(QModelIndex)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(200)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSpacing(2)
        self.doubleClicked.connect(self.preview_requested)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and self.currentIndex().isValid():
            self.preview_requested.emit(self.currentIndex())
            return
        super().keyPressEvent(event)


class ImageGrid(QWidget):
    """The grid view with its zoom slider and a caption ("1,204 images")."""

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.model = ImageGridModel(loader, self)
        self.delegate = ThumbnailDelegate(self)
        self.view = GridView(self)
        self.view.setObjectName("imageGrid")
        self.view.setModel(self.model)
        self.view.setItemDelegate(self.delegate)
        self.caption = QLabel(self)
        self.zoom = QSlider(Qt.Orientation.Horizontal, self)
        self.zoom.setObjectName("zoomSlider")
        self.zoom.setRange(MIN_ZOOM, MAX_ZOOM)
        self.zoom.setValue(DEFAULT_ZOOM)
        self.zoom.setMaximumWidth(180)
        self.zoom.setToolTip("Thumbnail size")
        self.zoom.valueChanged.connect(self.set_zoom)
        bar = QHBoxLayout()
        bar.addWidget(self.caption, 1)
        bar.addWidget(QLabel("Size", self))
        bar.addWidget(self.zoom)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        self.model.modelReset.connect(self._update_caption)
        self.model.rowsInserted.connect(self._update_caption)

    def set_zoom(self, px: int) -> None:
        self.delegate.cell = px
        self.view.setIconSize(QSize(px, px))
        self.view.scheduleDelayedItemsLayout()

    def selected_image_ids(self) -> list[int]:
        rows = self.view.selectionModel().selectedIndexes()
        return sorted({i.data(ImageIdRole) for i in rows if i.data(ImageIdRole) is not None})

    def _update_caption(self, *args) -> None:
        count = self.model.rowCount()
        self.caption.setText(f"{count:,} image{'s' * (count != 1)}")
