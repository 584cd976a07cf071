"""The app shell: start screen, menus, device detection, dropping a folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from softclust_gui import __version__, recent
from softclust_gui.ui.about import about_lines
from softclust_gui.ui.main_window import MainWindow
from softclust_gui.ui.start_screen import DROP_PROMPT

pytestmark = pytest.mark.gui


def _write_photos(folder: Path, names: list[str]) -> None:
    for name in names:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fmt = {"jpg": "JPEG", "png": "PNG", "tif": "TIFF"}[name.rsplit(".", 1)[1].lower()]
        Image.new("RGB", (32, 24), (120, 80, 40)).save(target, fmt)


@pytest.fixture
def window(qtbot):
    win = MainWindow()
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.device_detected, timeout=60_000):
        win.show()
    return win


def _drop(widget, path: Path) -> QDropEvent:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dropEvent(event)
    return event


def test_start_screen_has_drop_zone_open_button_and_empty_recent(window):
    screen = window.start_screen
    assert screen.drop_zone.prompt.text() == DROP_PROMPT
    assert screen.open_button.text() == "Open folder..."
    assert screen.recent_list.count() == 0
    assert screen.recent_empty.isVisibleTo(window)


def test_menus_and_disabled_undo_redo(window):
    titles = [action.text() for action in window.menuBar().actions()]
    assert titles == ["&File", "&Edit", "&View", "&Help"]
    file_actions = [a.text() for a in window.file_menu.actions() if not a.isSeparator()]
    assert file_actions == ["&Open folder...", "&Export...", "&Quit"]
    assert not window.export_action.isEnabled()  # nothing to export before a sorting
    assert not window.undo_action.isEnabled()
    assert not window.redo_action.isEnabled()
    # Every edit waits for a sorted session.
    edits = [a for a in window.edit_menu.actions() if not a.isSeparator()]
    assert len(edits) == 9
    assert not any(a.isEnabled() for a in edits)
    shortcuts = {a.text(): a.shortcut().toString() for a in edits}
    assert shortcuts["&Rename cluster"] == "F2"
    assert window.redo_action.shortcuts()[0].toString() == "Ctrl+Shift+Z"


def test_status_bar_and_about_name_the_device(window):
    assert window.device_text.startswith(("CPU", "GPU", "Apple"))
    assert window.device_label.text() == f"Device: {window.device_text}"
    lines = about_lines(window.device_text, window.torch_version)
    import torch

    assert lines[0].endswith(__version__)
    assert any(line.startswith("Python 3.") for line in lines)
    assert any(line.startswith("Qt 6.") for line in lines)
    assert f"torch {torch.__version__}" in lines
    assert f"Compute device: {window.device_text}" in lines


def test_loaded_libraries_are_kept_out_of_garbage_collection(window):
    import gc

    # torch and the engine, loaded before the device was named, are no longer scanned.
    assert gc.get_freeze_count() > 100_000


def test_dropping_a_folder_counts_its_images(window, qtbot, tmp_path):
    _write_photos(tmp_path, ["a/one.jpg", "a/two.JPG", "b/x.png", "c.tif"])
    (tmp_path / "a/one.SRT").write_text("subtitles")
    (tmp_path / ".hidden.jpg").write_bytes(b"")
    with qtbot.waitSignal(window.folder_counted, timeout=10_000) as blocker:
        _drop(window.start_screen.drop_zone, tmp_path)
    assert blocker.args == [tmp_path, 4]
    assert "4 image files" in window.start_screen.message.text()
    # The processing page shows the images found, before any feature exists.
    assert window.pages.currentWidget() is window.processing
    assert window.processing.grid.model.rowCount() == 4
    with qtbot.waitSignal(window.sorted_ready, timeout=60_000):
        window.job.change_settings(window.job.with_settings(model="colour-texture"))


def test_a_card_counts_only_its_dcim_folder(window, qtbot, tmp_path):
    _write_photos(tmp_path, ["DCIM/100MEDIA/DJI_0001.JPG", "DCIM/100MEDIA/DJI_0002.jpg"])
    _write_photos(tmp_path, ["MISC/other.jpg"])
    with qtbot.waitSignal(window.folder_counted, timeout=10_000) as blocker:
        window.open_folder(tmp_path)
    assert blocker.args == [tmp_path, 2]
    qtbot.waitUntil(lambda: not window.job.busy, timeout=60_000)
    # The folder is remembered in Recent, and the list survives a new window.
    assert recent.load_recent() == [tmp_path.resolve()]
    assert window.start_screen.recent_list.count() == 1


def test_dropping_a_file_is_refused(window, tmp_path):
    _write_photos(tmp_path, ["one.jpg"])
    event = _drop(window.start_screen.drop_zone, tmp_path / "one.jpg")
    assert not event.isAccepted()
    assert window.current_folder is None


def test_opening_a_missing_folder_says_so(window, tmp_path):
    window.open_folder(tmp_path / "not-there")
    assert "is not a folder" in window.start_screen.message.text()


def test_empty_folder_suggests_what_to_choose(window, qtbot, tmp_path):
    with qtbot.waitSignal(window.job_stopped, timeout=10_000) as blocker:
        window.open_folder(tmp_path)
    assert "No images were found" in blocker.args[0]
    assert "Choose a folder that holds photos" in window.start_screen.message.text()
    assert window.pages.currentWidget() is window.start_screen
