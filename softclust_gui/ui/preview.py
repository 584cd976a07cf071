"""The preview of one image, decoded in the background, with its metadata."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QDialog, QFormLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from softclust_gui.ui.thumbnails import image_from_file
from softclust_gui.ui.workers import Worker, WorkerContext, WorkerSlot

logger = logging.getLogger(__name__)

PREVIEW_PX = 1280


def _decode(context: WorkerContext, path: Path, max_px: int) -> tuple[Path, QImage]:
    return path, image_from_file(path, max_px)


def metadata_lines(path: Path, metadata: dict) -> list[tuple[str, str]]:
    """(label, value) pairs for what is known about an image, in plain words."""
    lines = [("File", str(path))]
    if metadata.get("captured_at"):
        lines.append(("Time", str(metadata["captured_at"]).replace("T", " ")))
    lat, lon = metadata.get("latitude"), metadata.get("longitude")
    if lat is not None and lon is not None:
        lines.append(("GPS", f"{lat:.6f}, {lon:.6f}"))
    alt, rel = metadata.get("altitude"), metadata.get("relative_altitude")
    if alt is not None or rel is not None:
        parts = []
        if alt is not None:
            parts.append(f"{alt:.1f} m above sea level")
        if rel is not None:
            parts.append(f"{rel:.1f} m above take-off")
        lines.append(("Altitude", ", ".join(parts)))
    camera = " ".join(
        p for p in (metadata.get("camera_make"), metadata.get("camera_model")) if p
    )
    if camera:
        lines.append(("Camera", camera))
    if metadata.get("width") and metadata.get("height"):
        lines.append(("Size", f"{metadata['width']} x {metadata['height']} px"))
    return lines


class PreviewPane(QWidget):
    """A picture that fits the pane and a form of the image's metadata."""

    def __init__(self, max_px: int = PREVIEW_PX, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.max_px = max_px
        self.path: Path | None = None
        self._image = QImage()
        self._slot = WorkerSlot(self)
        self.picture = QLabel("No image selected", self)
        self.picture.setObjectName("previewPicture")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(160, 120)
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.form = QFormLayout()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.picture, 1)
        layout.addLayout(self.form)

    def show_image(self, path: Path | None, metadata: dict | None = None) -> None:
        self.path = path
        while self.form.rowCount():
            self.form.removeRow(0)
        if path is None:
            self._slot.cancel()
            self._image = QImage()
            self.picture.setText("No image selected")
            return
        for label, value in metadata_lines(path, metadata or {}):
            field = QLabel(value, self)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            field.setWordWrap(True)
            self.form.addRow(f"{label}:", field)
        self.picture.setText("Loading...")
        worker = Worker(_decode, path, self.max_px)
        worker.signals.result.connect(self._decoded)
        worker.signals.error.connect(self._failed)
        self._slot.start(worker)

    def _decoded(self, found: tuple[Path, QImage]) -> None:
        path, image = found
        if path != self.path:
            return
        self._image = image
        self._rescale()

    def _failed(self, exc: Exception) -> None:
        self._image = QImage()
        self.picture.setText(f"This image cannot be shown: {exc}")

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._image.isNull():
            return
        pixmap = QPixmap.fromImage(self._image).scaled(
            self.picture.size(),
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        self.picture.setPixmap(pixmap)


class PreviewDialog(QDialog):
    """The large preview (Space or double-click in the grid); Esc or Space closes it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preview")
        self.resize(1000, 760)
        self.pane = PreviewPane(2048, self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pane)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space:
            self.close()
            return
        super().keyPressEvent(event)
