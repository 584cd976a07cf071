"""A small plot of the clusters: features projected to 2-D, or GPS positions.

Drawn with QPainter; no map tiles (the laptop is offline) and no plotting library.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QTabWidget, QWidget

# Twelve colours that stay apart for most kinds of colour vision (Tableau-like).
PALETTE = [
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
    "#1f77b4",
    "#8c564b",
]


def colour(index: int) -> QColor:
    return QColor(PALETTE[index % len(PALETTE)])


def gps_xy(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Local east/north metres around the mean position (equirectangular, fine for a flight)."""
    lat0 = float(np.mean(lat))
    east = (lon - np.mean(lon)) * 111_320.0 * math.cos(math.radians(lat0))
    north = (lat - lat0) * 110_540.0
    return np.column_stack([east, north])


class ScatterPlot(QWidget):
    """Points coloured by cluster, with a legend; ``message`` shows when there are none."""

    def __init__(self, message: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = message
        self.xy = np.zeros((0, 2))
        self.groups = np.zeros(0, dtype=np.int64)
        self.names: list[str] = []
        self.highlight: int | None = None
        self.equal_aspect = False
        self.setMinimumSize(200, 160)

    def set_points(self, xy: np.ndarray, groups: np.ndarray, names: list[str]) -> None:
        self.xy, self.groups, self.names = np.asarray(xy), np.asarray(groups), list(names)
        self.update()

    def set_highlight(self, row: int | None) -> None:
        self.highlight = row
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        if len(self.xy) == 0:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                self.rect(),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.message,
            )
            return
        legend_w = min(160, self.width() // 3)
        area = QRectF(self.rect()).adjusted(10, 10, -10 - legend_w, -10)
        points = self._to_screen(area)
        radius = 2.5 if len(points) > 1000 else 3.5
        painter.setPen(Qt.PenStyle.NoPen)
        for group in np.unique(self.groups):
            painter.setBrush(colour(int(group)))
            for x, y in points[self.groups == group]:
                painter.drawEllipse(QPointF(x, y), radius, radius)
        if self.highlight is not None and 0 <= self.highlight < len(points):
            x, y = points[self.highlight]
            painter.setPen(palette.color(QPalette.ColorRole.Text))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(QPointF(x, y), 7, 7)
        self._draw_legend(painter, QRectF(area.right() + 10, 10, legend_w, area.height()))

    def _to_screen(self, area: QRectF) -> np.ndarray:
        low, high = self.xy.min(axis=0), self.xy.max(axis=0)
        span = np.where(high - low > 0, high - low, 1.0)
        scale = np.array([area.width(), area.height()]) / span
        if self.equal_aspect:
            scale[:] = scale.min()
        middle = (low + high) / 2
        centre = np.array([area.center().x(), area.center().y()])
        screen = (self.xy - middle) * scale
        screen[:, 1] = -screen[:, 1]  # north / second axis up
        return screen + centre

    def _draw_legend(self, painter: QPainter, box: QRectF) -> None:
        metrics = painter.fontMetrics()
        line = metrics.height() + 2
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        for i, name in enumerate(self.names[: int(box.height() // line)]):
            y = box.top() + i * line
            painter.setBrush(colour(i))
            painter.drawRect(QRectF(box.left(), y + 3, 10, 10))
            text = metrics.elidedText(name, Qt.TextElideMode.ElideRight, int(box.width()) - 16)
            painter.drawText(QPointF(box.left() + 16, y + metrics.ascent()), text)


class PlotPane(QTabWidget):
    """Two tabs: "Clusters" (the features in 2-D) and "Map" (GPS positions, when present)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.clusters = ScatterPlot(
            "The clusters appear here once the images are sorted.", self
        )
        self.map = ScatterPlot("No GPS positions in these images.", self)
        self.map.equal_aspect = True
        self.addTab(self.clusters, "Clusters")
        self.addTab(self.map, "Map")
        self.projection = np.zeros((0, 2))
        self.positions: np.ndarray | None = None  # (n, 2) metres, NaN where unknown

    def set_data(self, projection: np.ndarray, positions: np.ndarray | None) -> None:
        self.projection, self.positions = projection, positions

    def show_groups(self, groups: np.ndarray, names: list[str]) -> None:
        """``groups``: (n_images,) index into ``names`` of each image's leaf cluster."""
        if len(self.projection) == len(groups):
            self.clusters.set_points(self.projection, groups, names)
        if self.positions is not None and len(self.positions) == len(groups):
            known = ~np.isnan(self.positions).any(axis=1)
            self.map.set_points(self.positions[known], groups[known], names)
