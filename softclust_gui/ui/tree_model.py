"""The tree of splits as a Qt item model over the session, and its view.

Each row is a cluster: its name (editable in place), its image count, and the thumbnail
of its representative image, the member nearest the cluster's mean feature vector.
Images dragged from the grid and dropped on a row move into that cluster. Every edit
goes through the session's undoable commands; the model follows the session's changes.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView

from softclust_gui.session import ROOT, Change, Session, SessionError
from softclust_gui.ui.grid import IMAGE_IDS_MIME, ids_from_mime
from softclust_gui.ui.thumbnails import ThumbnailLoader

logger = logging.getLogger(__name__)

NO_PARENT = QModelIndex()  # the invalid index: "top level" for item models

NodeIdRole = Qt.ItemDataRole.UserRole + 10
NAME, COUNT = 0, 1
ICON_PX = 40


class ClusterTreeModel(QAbstractItemModel):
    """Rows are session nodes; ``internalId`` is the node id. The root row is "All images"."""

    edit_failed = Signal(str)  # a rename or a drop the session refused, in plain words

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.session: Session | None = None
        self._representatives: dict[int, int | None] = {}
        self._parents: dict[int, int | None] = {}
        self._children: dict[int, tuple[int, ...]] = {}
        loader.ready.connect(self._thumbnail_ready)

    def set_session(self, session: Session | None) -> None:
        self.beginResetModel()
        if self.session is not None and self._on_change in self.session.observers:
            self.session.observers.remove(self._on_change)
        self.session = session
        self._representatives.clear()
        self._snapshot()
        if session is not None:
            session.observers.append(self._on_change)
        self.endResetModel()

    # -- structure (from a snapshot, so that the view never sees half a change) --------
    def _snapshot(self) -> None:
        self._parents, self._children = {}, {}
        if self.session is None:
            return
        for node_id in self.session.node_ids():
            state = self.session.node(node_id)
            self._parents[node_id] = state.parent
            self._children[node_id] = state.children

    def index_of(self, node_id: int, column: int = NAME) -> QModelIndex:
        if node_id not in self._parents:
            return QModelIndex()
        parent = self._parents[node_id]
        row = 0 if parent is None else self._children[parent].index(node_id)
        return self.createIndex(row, column, node_id)

    def known_nodes(self) -> list[int]:
        return list(self._parents)

    def node_id(self, index: QModelIndex) -> int | None:
        return int(index.internalId()) if index.isValid() else None

    def index(self, row: int, column: int, parent=NO_PARENT) -> QModelIndex:
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, ROOT)
        children = self._children.get(self.node_id(parent), ())
        return self.createIndex(row, column, children[row])

    def parent(self, index: QModelIndex = NO_PARENT) -> QModelIndex:
        if not index.isValid():
            return QModelIndex()
        parent = self._parents.get(self.node_id(index))
        return QModelIndex() if parent is None else self.index_of(parent)

    def rowCount(self, parent=NO_PARENT) -> int:
        if not self._parents:
            return 0
        if not parent.isValid():
            return 1
        if parent.column() != NAME:
            return 0
        return len(self._children.get(self.node_id(parent), ()))

    def columnCount(self, parent=NO_PARENT) -> int:
        return 2

    # -- data --------------------------------------------------------------------------
    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return ("Cluster", "Images")[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        node_id = self.node_id(index)
        if self.session is None or node_id not in self._parents:
            return None
        try:
            return self._data(index, node_id, role)
        except SessionError:  # removed from the session; the model resets right after
            return None

    def _data(self, index: QModelIndex, node_id: int, role):
        if role == NodeIdRole:
            return node_id
        if index.column() == NAME:
            if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
                return self.session.name(node_id)
            if role == Qt.ItemDataRole.DecorationRole:
                return self._thumbnail(node_id)
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"{self.session.name(node_id)}: {self.session.count(node_id):,} images"
        elif index.column() == COUNT:
            if role == Qt.ItemDataRole.DisplayRole:
                return f"{self.session.count(node_id):,}"
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _thumbnail(self, node_id: int) -> QImage | None:
        if node_id not in self._representatives:
            self._representatives[node_id] = self.session.representative(node_id)
        image_id = self._representatives[node_id]
        if image_id is None:
            return None
        image = self.loader.get(str(self.session.images[image_id].path))
        if image is None:
            return None
        return image.scaled(
            ICON_PX,
            ICON_PX,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        base |= Qt.ItemFlag.ItemIsDropEnabled
        if index.column() == NAME:
            base |= Qt.ItemFlag.ItemIsEditable
        return base

    def setData(self, index: QModelIndex, value, role=Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or self.session is None:
            return False
        try:
            self.session.rename(self.node_id(index), str(value))
        except SessionError as exc:
            self.edit_failed.emit(str(exc))
            return False
        return True

    # -- drops from the grid -----------------------------------------------------------
    def mimeTypes(self) -> list[str]:
        return [IMAGE_IDS_MIME]

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction | Qt.DropAction.CopyAction

    def canDropMimeData(self, data, action, row, column, parent) -> bool:
        return parent.isValid() and bool(ids_from_mime(data))

    def dropMimeData(self, data, action, row, column, parent) -> bool:
        ids = ids_from_mime(data)
        if not ids or not parent.isValid() or self.session is None:
            return False
        if row >= 0:  # dropped between rows: into the cluster above the gap's parent
            parent = parent.sibling(parent.row(), NAME)
        try:
            self.session.move_images(ids, self.node_id(parent))
        except SessionError as exc:
            self.edit_failed.emit(str(exc))
            return False
        # The session moved them; tell the view not to remove anything itself.
        return False

    # -- following the session ---------------------------------------------------------
    def _on_change(self, change: Change) -> None:
        self._representatives.clear()
        if change.added or change.removed or change.kind == "load":
            self.beginResetModel()
            self._snapshot()
            self.endResetModel()
            return
        for node_id in self._parents:
            self.dataChanged.emit(self.index_of(node_id, NAME), self.index_of(node_id, COUNT))

    def _thumbnail_ready(self, key: str) -> None:
        if self.session is None:
            return
        for node_id, image_id in list(self._representatives.items()):
            index = self.index_of(node_id)
            if (
                index.isValid()
                and image_id is not None
                and str(self.session.images[image_id].path) == key
            ):
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class ClusterTreeView(QTreeView):
    """The tree of splits: F2 or double-click renames; a drop moves images in."""

    nodes_selected = Signal(list)  # node ids, current first

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("clusterTree")
        self.setIconSize(QSize(ICON_PX, ICON_PX))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setDropIndicatorShown(True)
        self.setUniformRowHeights(True)
        self.setAllColumnsShowFocus(True)
        self._expanded: set[int] = set()
        self._selected: list[int] = []
        self._seen: set[int] = set()

    def setModel(self, model: ClusterTreeModel) -> None:
        super().setModel(model)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        model.modelAboutToBeReset.connect(self._remember_state)
        model.modelReset.connect(self._restore_state)
        self.selectionModel().selectionChanged.connect(self._emit_selection)
        self.selectionModel().currentChanged.connect(self._emit_selection)

    def selected_node_ids(self) -> list[int]:
        model: ClusterTreeModel = self.model()
        current = model.node_id(self.currentIndex())
        rows = self.selectionModel().selectedRows(NAME)
        ids = [model.node_id(i) for i in rows]
        if current in ids:
            ids.remove(current)
            ids.insert(0, current)
        elif current is not None and not ids:
            ids = [current]
        return ids

    def select_node(self, node_id: int) -> None:
        index = self.model().index_of(node_id)
        self.setCurrentIndex(index)
        self.scrollTo(index)

    def _emit_selection(self, *args) -> None:
        self.nodes_selected.emit(self.selected_node_ids())

    def _remember_state(self) -> None:
        model: ClusterTreeModel = self.model()
        self._selected = self.selected_node_ids()
        self._expanded = set()
        if model.session is None:
            return
        for node_id in model.known_nodes():
            if self.isExpanded(model.index_of(node_id)):
                self._expanded.add(node_id)

    def _restore_state(self) -> None:
        model: ClusterTreeModel = self.model()
        if model.session is None:
            return
        known = set(model.session.node_ids())
        for node_id in model.session.node_ids():
            new = node_id not in self._expanded and node_id not in self._seen
            if node_id in self._expanded or new:
                self.expand(model.index_of(node_id))
        self._seen = known
        chosen = [n for n in self._selected if n in known] or [ROOT]
        self.select_node(chosen[0])
