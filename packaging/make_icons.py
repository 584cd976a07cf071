#!/usr/bin/env python3
"""Render the app icon from ``resources/icons/softclust.svg`` in every format needed.

    python packaging/make_icons.py [--check]

Writes, beside the SVG: ``softclust.png`` (256 px, the window icon the app loads),
``softclust-512.png``, ``softclust.ico`` (Windows: 16-256 px in one file) and
``softclust.icns`` (macOS: 16-1024 px). ``--check`` only tells whether the files are up to
date with the SVG (exit code 1 when not), without writing anything.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
SVG = ICONS / "softclust.svg"
PNG_SIZES = {"softclust.png": 256, "softclust-512.png": 512}
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZE = 1024  # Pillow writes every smaller ICNS size from it


def render_png(svg: Path, size: int) -> bytes:
    """Render ``svg`` to a ``size`` x ``size`` RGBA PNG with Qt's SVG renderer."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer
    from PySide6.QtWidgets import QApplication

    # A QApplication, not a QGuiApplication: in a process that later shows widgets (the
    # test run), the first application object made decides, and widgets need this one.
    _app = QApplication.instance() or QApplication([])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not an SVG file Qt can read.")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data)


def build_icons(svg: Path = SVG) -> dict[str, bytes]:
    """All icon files, by name, rendered from ``svg``."""
    from PIL import Image

    files = {name: render_png(svg, size) for name, size in PNG_SIZES.items()}
    big = Image.open(io.BytesIO(render_png(svg, ICNS_SIZE))).convert("RGBA")
    ico = io.BytesIO()
    big.save(ico, format="ICO", sizes=[(s, s) for s in ICO_SIZES])
    files["softclust.ico"] = ico.getvalue()
    icns = io.BytesIO()
    big.save(icns, format="ICNS")
    files["softclust.icns"] = icns.getvalue()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, data in build_icons().items():
        target = ICONS / name
        if target.exists() and target.read_bytes() == data:
            continue
        stale.append(name)
        if not args.check:
            target.write_bytes(data)
            print(f"wrote {target} ({len(data):,} bytes)")
    if args.check and stale:
        print(f"out of date with {SVG.name}: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
