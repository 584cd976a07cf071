"""Errors reach the user in plain words; cards are found by themselves; offload, export."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from softclust_gui import paths
from softclust_gui.ui import workflow
from softclust_gui.ui.export_dialog import ExportDialog
from softclust_gui.ui.main_window import MainWindow
from softclust_gui.ui.workflow import SortSettings
from tests.ui.photos import write_photos

pytestmark = pytest.mark.gui

FAST = SortSettings(n_clusters=2, model="colour-texture")


@pytest.fixture
def window(qtbot):
    win = MainWindow(settings=FAST)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.device_detected, timeout=120_000):
        win.show()
    return win


def test_an_uncaught_worker_exception_shows_the_log_path(
    window, qtbot, tmp_path, monkeypatch, caplog
):
    write_photos(tmp_path / "flight", per_look=2)

    def broken_scan(*args, **kwargs):
        raise RuntimeError("the card reader went away")

    monkeypatch.setattr(workflow, "scan_source", broken_scan)
    with qtbot.waitSignal(window.job_stopped, timeout=10_000):
        window.open_folder(tmp_path / "flight")
    boxes = [
        b for b in window.findChildren(QMessageBox) if b.objectName() == "unexpectedErrorBox"
    ]
    assert len(boxes) == 1 and boxes[0].isVisible()
    assert "the card reader went away" in boxes[0].text()
    assert str(paths.log_file()) in boxes[0].informativeText()
    # The app lives on: back on the start screen, ready for another folder.
    assert window.isVisible() and window.pages.currentWidget() is window.start_screen
    assert "failed" in window.start_screen.message.text()
    assert "Scanning failed: the card reader went away" in caplog.messages


def test_a_plugged_card_shows_up_and_offloads_then_sorts(window, qtbot, tmp_path):
    mounts = tmp_path / "media"
    card = mounts / "DRONE_CARD"
    photos = write_photos(card / "DCIM" / "100MEDIA", per_look=2)
    (card / "DCIM" / "100MEDIA" / "look0_0000.SRT").write_text("telemetry")
    watcher = window.start_screen.card_watcher
    with qtbot.waitSignal(watcher.cards_changed, timeout=10_000) as blocker:
        watcher.mount_roots = [mounts]
        watcher.refresh()
    assert [c.root for c in blocker.args[0]] == [card]
    rows = window.start_screen.card_rows
    assert len(rows) == 1 and rows[0].sort_button.text() == "Sort this card"
    assert rows[0].offload_button.text() == "Offload this card first..."

    # Offload first: a verified copy of the whole card, then the copy is sorted.
    dest = tmp_path / "offloaded"
    with qtbot.waitSignal(window.sorted_ready, timeout=120_000):
        window.start_offload(card, dest)
    copies = sorted(dest.rglob("*.jpg"))
    assert len(copies) == len(photos)
    assert all((dest / p.relative_to(card)).read_bytes() == p.read_bytes() for p in photos)
    assert (dest / "DCIM/100MEDIA/look0_0000.SRT").read_text() == "telemetry"
    assert window.current_folder == dest

    # A card that is unplugged disappears from the start screen.
    import shutil

    with qtbot.waitSignal(watcher.cards_changed, timeout=10_000):
        shutil.rmtree(card)
        watcher.refresh()
    assert window.start_screen.card_rows == []


def test_sort_this_card_opens_it(window, qtbot, tmp_path):
    card = tmp_path / "media" / "CARD"
    write_photos(card / "DCIM" / "100MEDIA", per_look=1)
    window.start_screen.card_watcher.mount_roots = [tmp_path / "media"]
    with qtbot.waitSignal(window.start_screen.card_watcher.cards_changed, timeout=10_000):
        window.start_screen.card_watcher.refresh()
    with qtbot.waitSignal(window.folder_counted, timeout=10_000) as blocker:
        window.start_screen.card_rows[0].sort_button.click()
    assert blocker.args == [card, 3]
    qtbot.waitUntil(lambda: not window.job.busy, timeout=60_000)


def test_export_to_an_impossible_place_says_what_was_not_exported(window, qtbot, tmp_path):
    write_photos(tmp_path / "flight", per_look=3)
    with qtbot.waitSignal(window.sorted_ready, timeout=120_000):
        window.open_folder(tmp_path / "flight")
    dialog: ExportDialog = window.open_export()
    # The safe choices are made for the user: copy, nested as the tree.
    assert dialog.copy_radio.isChecked() and not dialog.move_radio.isChecked()
    assert dialog.nested_radio.isChecked() and not dialog.flat_radio.isChecked()

    # Inside the source: refused before anything starts.
    dialog.dest_edit.setText(str(tmp_path / "flight" / "sorted"))
    assert not dialog.export_button.isEnabled()
    assert "inside the images' folder" in dialog.problem.text()

    # Below a file: the export stops and lists every image as not exported.
    blocker_file = tmp_path / "not-a-folder"
    blocker_file.write_text("x")
    dialog.dest_edit.setText(str(blocker_file / "sorted"))
    assert dialog.export_button.isEnabled()
    with qtbot.waitSignal(dialog.finished_export, timeout=60_000) as done:
        dialog.export_button.click()
    report = done.args[0]
    assert report.stopped and not report.exported
    assert "The export stopped" in dialog.problem.text()
    text = dialog.summary.toPlainText()
    assert "0 images exported" in text
    assert text.count("not exported:") == 9
    assert all(p.exists() for p in (tmp_path / "flight").glob("*.jpg"))


def test_cancelling_the_processing_returns_to_the_start_screen(window, qtbot, tmp_path):
    write_photos(tmp_path / "flight", per_look=40)
    with qtbot.waitSignal(window.folder_counted, timeout=10_000):
        window.open_folder(tmp_path / "flight")
    assert window.pages.currentWidget() is window.processing
    with qtbot.waitSignal(window.job_stopped, timeout=30_000) as blocker:
        window.processing.panel.cancel_button.click()
    assert "Cancelled" in blocker.args[0]
    assert window.pages.currentWidget() is window.start_screen
    assert Path(tmp_path / "flight").is_dir()
