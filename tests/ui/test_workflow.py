"""The whole workflow on real JPEGs: open, wait for the tree, edit, undo, redo, export."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QLineEdit

from softclust_gui.session import ROOT
from softclust_gui.ui.main_window import MainWindow
from softclust_gui.ui.workflow import SortSettings
from tests.ui.photos import write_photos

pytestmark = pytest.mark.gui

FAST = SortSettings(n_clusters=3, model="colour-texture")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def sorted_window(qtbot, tmp_path):
    photos = write_photos(tmp_path / "flight", per_look=8, gps=True)
    win = MainWindow(settings=FAST)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.sorted_ready, timeout=120_000):
        win.open_folder(tmp_path / "flight")
    return win, photos


def _select_nodes(win, node_ids):
    tree, model = win.main_view.tree, win.main_view.tree_model
    selection = tree.selectionModel()
    flag = QItemSelectionModel.SelectionFlag
    selection.setCurrentIndex(model.index_of(node_ids[0]), flag.ClearAndSelect | flag.Rows)
    for node_id in node_ids[1:]:  # Ctrl+click
        selection.select(model.index_of(node_id), flag.Select | flag.Rows)


def test_open_edit_undo_redo_export(sorted_window, qtbot, tmp_path):
    win, photos = sorted_window
    before = {p: _digest(p) for p in photos}
    session = win.main_view.session
    leaves = session.leaves()
    assert len(leaves) == 3
    assert sum(session.count(n) for n in leaves) == 24
    # Each look ends up in its own cluster.
    looks = [{session.images[i].path.name[:5] for i in session.images_of(n)} for n in leaves]
    assert sorted(len(s) for s in looks) == [1, 1, 1]

    tree, model = win.main_view.tree, win.main_view.tree_model
    assert model.rowCount() == 1 and model.data(model.index(0, 0)) == "All images"
    assert model.rowCount(model.index(0, 0)) == 2  # the root splits in two

    # Rename inline with F2, as a user would.
    first = leaves[0]
    tree.select_node(first)
    tree.setFocus()
    win.main_view.rename_action.trigger()
    editor = tree.findChild(QLineEdit)
    assert editor is not None
    editor.selectAll()
    qtbot.keyClicks(editor, "Rooftops")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: session.name(first) == "Rooftops")  # the commit is queued
    assert win.undo_action.isEnabled() and "Rooftops" in win.undo_action.text()

    # Merge the two other leaves.
    target, source = leaves[1], leaves[2]
    merged_count = session.count(target) + session.count(source)
    _select_nodes(win, [target, source])
    win.main_view.merge_action.trigger()
    assert source not in session.node_ids()
    assert session.count(target) == merged_count

    # Move one image of the merged cluster into "Rooftops" by a drop on the tree.
    tree.select_node(target)
    grid = win.main_view.grid
    assert grid.model.rowCount() == merged_count
    moved = grid.model.image_ids[0]
    mime = grid.model.mimeData([grid.model.index(0)])
    model.dropMimeData(mime, Qt.DropAction.MoveAction, -1, -1, model.index_of(first))
    assert session.node_of(moved) == first
    assert grid.model.rowCount() == merged_count - 1  # the grid follows the move

    # Undo the move and the merge, then redo both.
    win.undo_action.trigger()
    assert session.node_of(moved) != first
    win.undo_action.trigger()
    assert source in session.node_ids()
    assert win.redo_action.isEnabled()
    win.redo_action.trigger()
    win.redo_action.trigger()
    assert session.node_of(moved) == first and source not in session.node_ids()
    assert not win.redo_action.isEnabled()

    # Exclude one image from the export.
    tree.select_node(first)
    last = grid.model.rowCount() - 1
    grid.view.selectionModel().select(
        grid.model.index(last), QItemSelectionModel.SelectionFlag.ClearAndSelect
    )
    left_out = grid.model.image_ids[last]
    assert left_out != moved
    win.main_view.exclude_action.trigger()
    assert session.is_excluded(left_out)

    # Export, nested, by copy; check the folders on disk.
    dialog = win.open_export()
    dest = tmp_path / "sorted"
    dialog.dest_edit.setText(str(dest))
    assert dialog.export_button.isEnabled()
    shown = {
        dialog.preview.topLevelItem(i).text(0): dialog.preview.topLevelItem(i).text(1)
        for i in range(dialog.preview.topLevelItemCount())
    }
    assert "Rooftops" in str(shown) or any(
        "Rooftops" in dialog.preview.topLevelItem(i).child(j).text(0)
        for i in range(dialog.preview.topLevelItemCount())
        for j in range(dialog.preview.topLevelItem(i).childCount())
    )
    # Each top folder counts every image below it: together, the whole export.
    assert sum(int(count.replace(",", "")) for count in shown.values()) == 23
    assert dialog.total_images == 23  # 24 photos, one excluded
    with qtbot.waitSignal(dialog.finished_export, timeout=60_000) as blocker:
        dialog.export_button.click()
    report = blocker.args[0]
    assert report.complete, report.summary()
    exported = sorted(p for p in dest.rglob("*.jpg"))
    assert len(exported) == 23  # one excluded
    rooftops = [p for p in exported if "Rooftops" in p.parent.name]
    assert len(rooftops) == session.count(first) - 1
    assert session.images[moved].path.name in {p.name for p in rooftops}
    assert session.images[left_out].path.name not in {p.name for p in exported}
    assert "23 images exported" in dialog.summary.toPlainText()
    # The sources are untouched.
    assert {p: _digest(p) for p in photos} == before


def test_reopening_resumes_the_saved_work(sorted_window, qtbot, tmp_path):
    win, _ = sorted_window
    session = win.main_view.session
    leaf = session.leaves()[0]
    session.rename(leaf, "Water")
    win.close()

    again = MainWindow(settings=FAST)
    qtbot.addWidget(again)
    again.show()
    with qtbot.waitSignal(again.sorted_ready, timeout=60_000):
        again.open_folder(tmp_path / "flight")
    resumed = again.main_view.session
    assert resumed is not session
    assert "Water" in [resumed.name(n) for n in resumed.leaves()]
    assert resumed.features is not None  # splitting works on the resumed session


def test_settings_change_reclusters_from_the_cache(sorted_window, qtbot):
    win, _ = sorted_window
    session = win.main_view.session
    with qtbot.waitSignal(win.sorted_ready, timeout=60_000):
        win.main_view.settings_bar.clusters.setValue(4)
    assert len(session.leaves()) == 4
    # The re-clustering is one undoable edit.
    win.undo_action.trigger()
    assert len(session.leaves()) == 3


def test_split_further_with_a_number(sorted_window, qtbot):
    win, _ = sorted_window
    session = win.main_view.session
    leaf = max(session.leaves(), key=session.count)
    with qtbot.waitSignal(win.sorted_ready, timeout=60_000):
        win.main_view.split_requested.emit(leaf, 2)
    assert len(session.node(leaf).children) == 2
    assert session.node(ROOT).children  # the rest of the tree is still there


def test_automatic_cluster_count_finds_the_three_looks(qtbot, tmp_path):
    write_photos(tmp_path / "flight", per_look=40)
    win = MainWindow(settings=FAST)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.sorted_ready, timeout=120_000):
        win.open_folder(tmp_path / "flight")
    box = win.main_view.settings_bar.clusters
    with qtbot.waitSignal(win.sorted_ready, timeout=60_000):
        box.setValue(box.minimum())
    assert box.text() == "Automatic"
    session = win.main_view.session
    looks = [
        {session.images[i].path.name[:5] for i in session.images_of(n)}
        for n in session.leaves()
    ]
    assert sorted(len(s) for s in looks) == [1, 1, 1]
    assert session.node(ROOT).settings["n_clusters"] == "auto"
    assert win.main_view.settings_bar.settings().n_clusters == "auto"
