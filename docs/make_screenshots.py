"""Take the README screenshots of the running app, under an X server.

Run from the repository root:

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python docs/make_screenshots.py

It writes docs/start-screen.png, docs/processing.png, docs/main-view.png and
docs/export-dialog.png (about 10 s). Every user folder of the app goes to a temporary
folder, deleted at the end; the bundled sample flight is only read and nothing is exported.
Each picture is read back from the X server's screen, so it shows what a user would see.

On Debian or Ubuntu, Xvfb and the libraries of Qt's X11 plugin come with
``apt-get install xvfb libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageQt
from PySide6.QtCore import QRect, QTimer
from PySide6.QtGui import QGuiApplication

DOCS = Path(__file__).resolve().parent
WINDOW = QRect(0, 0, 1280, 800)
SETTLE_MS = 400  # time for a change to be painted on the X server before a grab
POLL_MS = 100
TIMEOUT_S = 300
COPIES = 60  # of each sample photo, so that the progress page stays up a few seconds
N_CLUSTERS = 6  # the sample flight holds six kinds of scene
EXPORT_TO = "~/Pictures/sample-flight sorted"  # typed into the dialog, never exported to


def copy_sample(sample: Path, dest: Path, copies: int) -> Path:
    """A larger flight: ``copies`` of every sample photo, interleaved by name."""
    photos = sorted(sample.glob("*.JPG"))
    dest.mkdir()
    for n in range(copies * len(photos)):
        shutil.copyfile(photos[n % len(photos)], dest / f"DJI_{n + 1:04d}.JPG")
    return dest


def grab(rect: QRect) -> Image.Image:
    """The pixels the X server shows in ``rect``."""
    pixmap = QGuiApplication.primaryScreen().grabWindow(0, *rect.getRect())
    return ImageQt.fromqpixmap(pixmap).convert("RGB")


def save(picture: Image.Image, name: str) -> None:
    # 256 colours keep the photos' look and make the file about three times smaller.
    palette = picture.quantize(256, method=Image.Quantize.FASTOCTREE)
    palette.save(DOCS / name, optimize=True)


def once(signal, slot) -> None:
    """Connect ``slot`` to ``signal`` for its next emission only."""

    def call(*args) -> None:
        signal.disconnect(call)
        slot(*args)

    signal.connect(call)


def when(condition, then) -> None:
    """Call ``then`` once ``condition()`` holds and the screen has caught up."""
    if condition():
        QTimer.singleShot(SETTLE_MS, then)
    else:
        QTimer.singleShot(POLL_MS, lambda: when(condition, then))


def fail(message: str) -> None:
    print(f"make_screenshots: {message}", file=sys.stderr)
    QGuiApplication.exit(1)


class Tour:
    """Walks the main window through the four screens, saving a picture of each."""

    def __init__(self, window, big_flight: Path) -> None:
        self.window = window
        self.big_flight = big_flight
        self.started = time.monotonic()

    def shoot(self, name: str, rect: QRect | None = None) -> None:
        save(grab(rect or self.window.frameGeometry()), name)
        print(f"{time.monotonic() - self.started:5.1f} s  docs/{name}", flush=True)

    def start(self) -> None:
        once(self.window.device_detected, lambda _: QTimer.singleShot(SETTLE_MS, self.home))

    def home(self) -> None:
        self.shoot("start-screen.png")
        self.window.job.stage.connect(self.on_stage)
        self.window.open_folder(self.big_flight, remember=False)

    def on_stage(self, text: str, done: int, total: int, *_) -> None:
        if text.startswith("Computing features") and total and done >= total // 3:
            self.window.job.stage.disconnect(self.on_stage)
            QTimer.singleShot(SETTLE_MS, self.processing)

    def processing(self) -> None:
        if self.window.pages.currentWidget() is not self.window.processing:
            fail("the features were done before the grab; raise COPIES")
            return
        self.shoot("processing.png")
        once(self.window.sorted_ready, self.sorted)
        self.window.open_sample_flight()  # also cancels the larger run

    def sorted(self, session) -> None:
        view = self.window.main_view
        view.tree.select_node(max(session.leaves(), key=session.count))
        when(lambda: not view.preview.picture.pixmap().isNull(), self.main_view)

    def main_view(self) -> None:
        self.shoot("main-view.png")
        dialog = self.window.open_export()
        dialog.dest_edit.setText(EXPORT_TO)
        QTimer.singleShot(SETTLE_MS, self.export_dialog)

    def export_dialog(self) -> None:
        self.shoot("export-dialog.png", self.window.export_dialog.frameGeometry())
        QGuiApplication.quit()


def screen_problem() -> str:
    size = QGuiApplication.primaryScreen().size()
    if size.width() >= WINDOW.width() and size.height() >= WINDOW.height():
        return ""
    return (
        f"the screen is {size.width()}x{size.height()}; run under an X server of at least "
        f"{WINDOW.width()}x{WINDOW.height()}, as the docstring shows"
    )


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    with tempfile.TemporaryDirectory(prefix="softclust-screenshots-") as temp:
        os.environ["SOFTCLUST_HOME"] = str(Path(temp, "home"))
        from softclust_gui import paths
        from softclust_gui.ui.app import create_application
        from softclust_gui.ui.main_window import SAMPLE_FLIGHT, MainWindow
        from softclust_gui.ui.workflow import SortSettings

        app = create_application(sys.argv[:1])
        if problem := screen_problem():
            print(f"make_screenshots: {problem}", file=sys.stderr)
            return 2
        sample = paths.resource(SAMPLE_FLIGHT)
        big_flight = copy_sample(sample, Path(temp, "survey-flight"), COPIES)
        window = MainWindow(settings=SortSettings(N_CLUSTERS, model="colour-texture"))
        window.setGeometry(WINDOW)
        window.show()
        Tour(window, big_flight).start()
        QTimer.singleShot(TIMEOUT_S * 1000, lambda: fail(f"gave up after {TIMEOUT_S} s"))
        code = app.exec()
        window.close()
        return code


if __name__ == "__main__":
    sys.exit(main())
