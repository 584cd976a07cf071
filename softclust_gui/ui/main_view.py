"""The main view: the tree of splits, the grid of the chosen cluster, a preview and a plot.

Also the processing page shown while the first sorting runs, with the thumbnails filling
in as they are made. Every edit goes through the session's undoable commands.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from softclust_gui.imaging import EXTRACTOR_NAMES
from softclust_gui.session import AUTO, MAX_AUTO_CLUSTERS, ROOT, Change, Session, SessionError
from softclust_gui.ui.grid import ImageGrid, ImageIdRole
from softclust_gui.ui.plot import PlotPane, gps_xy
from softclust_gui.ui.preview import PreviewDialog, PreviewPane
from softclust_gui.ui.progress_panel import ProgressPanel
from softclust_gui.ui.thumbnails import ThumbnailLoader
from softclust_gui.ui.tree_model import ClusterTreeModel, ClusterTreeView
from softclust_gui.ui.workflow import GROUP_BY, SortSettings

logger = logging.getLogger(__name__)

MODEL_LABELS = {
    "mobilenet_v3_large": "MobileNetV3 (fast)",
    "resnet50": "ResNet-50 (slower, finer)",
    "litert-mobilenet_v1": "MobileNet v1 (LiteRT)",
    "colour-texture": "Colour and texture (no network)",
}
MAX_CLUSTERS = 64
AUTOMATIC_VALUE = 1  # the cluster count box's "Automatic"


def projection_of(session: Session) -> np.ndarray:
    """The images in 2-D: the first two columns of the session's features.

    The workflow reduces features with ``reduce_features`` (PCA), so these columns are
    the two principal axes; no decomposition is needed on the GUI thread.
    """
    features = session.features
    if features is None or features.shape[1] < 2:
        return np.zeros((0, 2))
    return np.asarray(features[:, :2], dtype=np.float64)


def gps_positions(session: Session) -> np.ndarray | None:
    """(n_images, 2) local metres east/north, NaN where unknown; None without any GPS."""
    lat = np.array([e.metadata.get("latitude") or np.nan for e in session.images], float)
    lon = np.array([e.metadata.get("longitude") or np.nan for e in session.images], float)
    known = ~(np.isnan(lat) | np.isnan(lon))
    if not known.any():
        return None
    xy = np.full((len(lat), 2), np.nan)
    xy[known] = gps_xy(lat[known], lon[known])
    return xy


class ProcessingPage(QWidget):
    """The progress panel above a grid of the thumbnails made so far."""

    def __init__(self, loader: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.panel = ProgressPanel(self)
        self.panel.setObjectName("progressPanel")
        self.grid = ImageGrid(loader, self)
        self.grid.set_zoom(96)
        self.grid.zoom.setValue(96)
        layout = QVBoxLayout(self)
        layout.addWidget(self.panel)
        layout.addWidget(self.grid, 1)


def _spin_value(n_clusters: int | str) -> int:
    return AUTOMATIC_VALUE if n_clusters == AUTO else int(n_clusters)


def _n_clusters(spin_value: int) -> int | str:
    return AUTO if spin_value == AUTOMATIC_VALUE else spin_value


class SettingsBar(QWidget):
    """Clusters wanted, "Group by" and the feature model; a change emits ``changed``."""

    changed = Signal(object)  # SortSettings

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.clusters = QSpinBox(self)
        self.clusters.setObjectName("clusterCount")
        # The minimum, 1, reads "Automatic": as many clusters as the images support.
        self.clusters.setRange(AUTOMATIC_VALUE, MAX_CLUSTERS)
        self.clusters.setSpecialValueText("Automatic")
        self.clusters.setValue(_spin_value(SortSettings().n_clusters))
        self.clusters.setKeyboardTracking(False)
        self.clusters.setToolTip(
            "How many clusters to sort the images into. Automatic, the lowest value, makes as "
            f"many as the images support, at most {MAX_AUTO_CLUSTERS}; it judges best with "
            "Group by: Connected shapes."
        )
        self.group_by = QComboBox(self)
        self.group_by.setObjectName("groupBy")
        for label, criterion in GROUP_BY.items():
            self.group_by.addItem(label, criterion)
        self.group_by.setToolTip(
            "Similar look: round, compact groups. Connected shapes: groups that follow the "
            "data's shape (slower)."
        )
        self.model = QComboBox(self)
        self.model.setObjectName("featureModel")
        for name in EXTRACTOR_NAMES:
            self.model.addItem(MODEL_LABELS.get(name, name), name)
        self.busy = QLabel(self)
        self.busy.setObjectName("busyLabel")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setVisible(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        for text, widget in (
            ("Clusters", self.clusters),
            ("Group by", self.group_by),
            ("Features", self.model),
        ):
            label = QLabel(text, self)
            label.setBuddy(widget)
            layout.addWidget(label)
            layout.addWidget(widget)
        layout.addSpacing(12)
        layout.addWidget(self.busy, 1)
        layout.addWidget(self.cancel_button)
        self.clusters.valueChanged.connect(self._emit)
        self.group_by.currentIndexChanged.connect(self._emit)
        self.model.currentIndexChanged.connect(self._emit)
        self._quiet = False

    def settings(self) -> SortSettings:
        return SortSettings(
            n_clusters=_n_clusters(self.clusters.value()),
            criterion=self.group_by.currentData(),
            model=self.model.currentData(),
        )

    def show_settings(self, settings: SortSettings) -> None:
        self._quiet = True
        self.clusters.setValue(_spin_value(settings.n_clusters))
        self.group_by.setCurrentIndex(max(0, self.group_by.findData(settings.criterion)))
        self.model.setCurrentIndex(max(0, self.model.findData(settings.model)))
        self._quiet = False

    def _emit(self, *args) -> None:
        if not self._quiet:
            self.changed.emit(self.settings())


class MainView(QWidget):
    """Tree | grid | preview and plot, with the edit actions of the Edit menu."""

    message = Signal(str)  # a short sentence for the status bar
    session_changed = Signal()

    def __init__(self, loader: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.session: Session | None = None
        self.current_node = ROOT
        self._preview_dialog: PreviewDialog | None = None

        self.settings_bar = SettingsBar(self)
        self.tree_model = ClusterTreeModel(loader, self)
        self.tree_model.edit_failed.connect(self.message)
        self.tree = ClusterTreeView(self)
        self.tree.setModel(self.tree_model)
        self.tree.nodes_selected.connect(self._nodes_selected)
        self.grid = ImageGrid(loader, self)
        self.grid.view.selectionModel().currentChanged.connect(self._current_image)
        self.grid.view.preview_requested.connect(self.open_preview)
        self.preview = PreviewPane(parent=self)
        self.plot = PlotPane(self)

        right = QSplitter(Qt.Orientation.Vertical, self)
        right.addWidget(self.preview)
        right.addWidget(self.plot)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.grid)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 5)
        self.splitter.setStretchFactor(2, 3)
        self.splitter.setSizes([300, 640, 380])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.settings_bar)
        layout.addWidget(self.splitter, 1)
        self._build_actions()

    # -- actions -----------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        action.setEnabled(False)
        return action

    def _build_actions(self) -> None:
        self.rename_action = self._action("&Rename cluster", self.rename_current, "F2")
        self.merge_action = self._action(
            "&Merge selected clusters",
            self.merge_selected,
            "Ctrl+M",
            "Merge the selected clusters into the current one",
        )
        self.split_action = self._action("&Split further...", self.ask_split, "Ctrl+Shift+S")
        self.move_action = self._action("Mo&ve images to...", self.ask_move, "Ctrl+Shift+M")
        self.new_action = self._action("&New empty cluster", self.add_cluster, "Ctrl+Shift+N")
        self.exclude_action = self._action(
            "E&xclude from export",
            self.exclude_selected,
            "Del",
            "Leave the selected images out of the export (no file is deleted)",
        )
        self.include_action = self._action("&Include in export", self.include_selected, "Ins")
        self.edit_actions = [
            self.rename_action,
            self.merge_action,
            self.split_action,
            self.move_action,
            self.new_action,
            self.exclude_action,
            self.include_action,
        ]
        for action in self.edit_actions:
            self.addAction(action)

    # -- the session -------------------------------------------------------------------
    def set_session(self, session: Session | None) -> None:
        if self.session is not None and self._on_change in self.session.observers:
            self.session.observers.remove(self._on_change)
        self.session = session
        self.tree_model.set_session(session)
        for action in self.edit_actions:
            action.setEnabled(session is not None)
        if session is None:
            self.grid.model.set_images([])
            self.preview.show_image(None)
            return
        session.observers.append(self._on_change)
        self.grid.model.is_excluded = session.is_excluded
        self.plot.set_data(projection_of(session), gps_positions(session))
        self.tree.expandAll()
        self.tree.select_node(ROOT)
        self._show_node(ROOT)
        self._update_plot()
        self.session_changed.emit()

    def _on_change(self, change: Change) -> None:
        known = set(self.session.node_ids())
        if self.current_node not in known:
            self.current_node = ROOT
            self.tree.select_node(ROOT)
        if change.images or change.added or change.removed:
            self._show_node(self.current_node)
        elif change.exclusion:
            self.grid.model.refresh_marks()
        self._update_plot()
        self.message.emit(
            f"{change.kind.capitalize() + ': ' if change.kind != 'edit' else ''}{change.label}"
        )
        self.session_changed.emit()

    def _update_plot(self) -> None:
        holders = [n for n in self.session.node_ids() if self.session.node(n).images]
        groups = np.zeros(len(self.session.images), dtype=np.int64)
        for group, node_id in enumerate(holders):
            groups[list(self.session.node(node_id).images)] = group
        self.plot.show_groups(groups, [self.session.name(n) for n in holders])

    # -- selection ---------------------------------------------------------------------
    def _nodes_selected(self, node_ids: list[int]) -> None:
        if node_ids and node_ids[0] != self.current_node:
            self._show_node(node_ids[0])

    def _show_node(self, node_id: int) -> None:
        self.current_node = node_id
        ids = self.session.images_of(node_id)
        keys = [str(self.session.images[i].path) for i in ids]
        self.grid.model.set_images(keys, ids)
        self.grid.caption.setText(
            f"{self.session.name(node_id)}: {len(ids):,} image{'s' * (len(ids) != 1)}"
        )
        if ids:
            self.grid.view.setCurrentIndex(self.grid.model.index(0))
        else:
            self.preview.show_image(None)

    def _current_image(self, index: QModelIndex, _previous=None) -> None:
        image_id = index.data(ImageIdRole) if index.isValid() else None
        if image_id is None:
            return
        entry = self.session.images[image_id]
        self.preview.show_image(entry.path, entry.metadata)
        self.plot.clusters.set_highlight(image_id)

    def open_preview(self, index: QModelIndex) -> None:
        image_id = index.data(ImageIdRole)
        if image_id is None:
            return
        if self._preview_dialog is None:
            self._preview_dialog = PreviewDialog(self)
        entry = self.session.images[image_id]
        self._preview_dialog.pane.show_image(entry.path, entry.metadata)
        self._preview_dialog.show()
        self._preview_dialog.raise_()

    # -- edits -------------------------------------------------------------------------
    def _try(self, edit, *args):
        try:
            return edit(*args)
        except SessionError as exc:
            self.message.emit(str(exc))
            return None

    def rename_current(self) -> None:
        self.tree.setFocus()
        self.tree.edit(self.tree_model.index_of(self.current_node))

    def merge_selected(self) -> None:
        ids = self.tree.selected_node_ids()
        if len(ids) < 2:
            self.message.emit("Select two or more clusters to merge (Ctrl+click in the tree).")
            return
        self._try(self.session.merge, ids[0], ids[1:])

    def ask_split(self) -> None:
        count = self.session.count(self.current_node)
        if count < 2:
            self.message.emit("This cluster holds fewer than 2 images: nothing to split.")
            return
        n, ok = QInputDialog.getInt(
            self,
            "Split further",
            f"Split {self.session.name(self.current_node)!r} into how many clusters?",
            2,
            2,
            min(MAX_CLUSTERS, count),
        )
        if ok:
            self.split_requested.emit(self.current_node, n)

    split_requested = Signal(int, int)  # node id, clusters wanted

    def ask_move(self) -> None:
        images = self.grid.selected_image_ids()
        if not images:
            self.message.emit("Select images in the grid first.")
            return
        targets = [n for n in self.session.node_ids() if n != self.current_node]
        labels = [
            f"{self.session.tree_path(n) or 'All'}  {self.session.name(n)}" for n in targets
        ]
        choice, ok = QInputDialog.getItem(
            self, "Move images", "Move to the cluster:", labels, 0, False
        )
        if ok:
            self.move_selected_to(targets[labels.index(choice)])

    def move_selected_to(self, node_id: int) -> None:
        self._try(self.session.move_images, self.grid.selected_image_ids(), node_id)

    def add_cluster(self) -> None:
        node_id = self._try(self.session.new_cluster, ROOT)
        if node_id is not None:
            self.tree.select_node(node_id)
            self.rename_current()

    def exclude_selected(self) -> None:
        images = self.grid.selected_image_ids()
        if images and self._try(self.session.exclude, images) is not None:
            self.message.emit(
                f"{len(images)} image(s) left out of the export. No file is deleted."
            )

    def include_selected(self) -> None:
        images = self.grid.selected_image_ids()
        if images:
            self._try(self.session.include, images)
