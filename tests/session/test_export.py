"""Export: verified copies, names, collisions, manifest, dry run, move, failures."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from softclust_gui.session.export import (
    JOURNAL_NAME,
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    ExportItem,
    Status,
    export,
    plan_folders,
)
from tests.session.conftest import remount, sha256


def tree_listing(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``root``: relative path -> (size, mtime_ns, inode)."""
    listing = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            listing[path.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return listing


def manifest_rows(dest: Path) -> list[dict[str, str]]:
    with open(dest / MANIFEST_NAME, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.endswith(".part")]


@pytest.fixture
def flight(tmp_path, make_images):
    """Two card folders whose file names repeat, as DJI cameras do."""
    src = tmp_path / "card"
    paths = make_images(
        src,
        ["100MEDIA/DJI_0001.JPG", "100MEDIA/DJI_0002.JPG", "101MEDIA/DJI_0001.JPG",
         "101MEDIA/DJI_0003.JPG"],
    )  # fmt: skip
    old = 1_600_000_000_000_000_000
    for i, path in enumerate(paths):
        os.utime(path, ns=(old + i, old + i * 1_000_000_000))
    return paths


def items_for(paths, folder=("Fields",)):
    meta = {"capture_time": "2024-05-01T10:00:00", "gps": "45.1,7.2,310"}
    return [
        ExportItem(p, folder, cluster_name=folder[-1], tree_path="1", **meta) for p in paths
    ]


def test_export_copies_bytes_and_times_and_writes_manifest(tmp_path, flight):
    items = [
        *items_for(flight[:2], ("Buildings", "Roofs")),
        *items_for(flight[2:], ("Fields",)),
    ]
    report = export(items, tmp_path / "out")

    assert report.complete and report.count(Status.COPIED) == 4
    for result in report.results:
        assert sha256(result.target) == sha256(result.source) == result.sha256
        assert result.target.stat().st_mtime_ns == result.source.stat().st_mtime_ns
    assert {
        r.target.parent.relative_to(tmp_path / "out").as_posix() for r in report.results
    } == {
        "Buildings/Roofs",
        "Fields",
    }
    rows = manifest_rows(tmp_path / "out")
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    assert len(rows) == 4
    row = next(r for r in rows if r["source"] == os.fspath(flight[0]))
    assert row["exported"] == "Buildings/Roofs/DJI_0001.JPG"
    assert row["cluster"] == "Roofs" and row["tree_path"] == "1"
    assert row["size"] == str(flight[0].stat().st_size) and row["sha256"] == sha256(flight[0])
    assert row["capture_time"] == "2024-05-01T10:00:00" and row["gps"] == "45.1,7.2,310"
    assert not (tmp_path / "out" / JOURNAL_NAME).exists()


def test_repeated_names_get_deterministic_suffix_and_reruns_change_nothing(tmp_path, flight):
    dest = tmp_path / "out"
    first = export(items_for(flight), dest)
    by_source = {r.source: r.target.name for r in first.results}
    assert by_source[flight[0]] == "DJI_0001.JPG"  # 100MEDIA sorts first
    assert by_source[flight[2]] == "DJI_0001_2.JPG"
    before = tree_listing(dest)

    second = export(list(reversed(items_for(flight))), dest)

    assert second.count(Status.ALREADY) == 4 and second.complete
    assert {r.source: r.target.name for r in second.results} == by_source
    after = tree_listing(dest)
    assert {k: v for k, v in after.items() if k != MANIFEST_NAME} == {
        k: v for k, v in before.items() if k != MANIFEST_NAME
    }
    assert (dest / MANIFEST_NAME).read_bytes() == (dest / MANIFEST_NAME).read_bytes()
    assert len(manifest_rows(dest)) == 4


def test_a_different_file_already_there_is_never_overwritten(tmp_path, flight):
    dest = tmp_path / "out" / "Fields"
    dest.mkdir(parents=True)
    (dest / "DJI_0001.JPG").write_bytes(b"someone else's file")

    report = export(items_for(flight[:1]), tmp_path / "out")

    assert (dest / "DJI_0001.JPG").read_bytes() == b"someone else's file"
    assert report.results[0].target == dest / "DJI_0001_2.JPG"
    assert sha256(dest / "DJI_0001_2.JPG") == sha256(flight[0])


@pytest.mark.parametrize(
    ("cluster", "folder"),
    [
        ("Roofs: north/south?", "Roofs_ north_south_"),
        ("CON", "CON_"),
        ("nul.txt", "nul_.txt"),
        ("Trees...  ", "Trees"),
        ("tab\there", "tab_here"),
        ("Été à Zürich ☀", "Été à Zürich ☀"),
        ("", "_"),
        ("..", "_"),
        ("a/../../etc", "a_.._.._etc"),
    ],
)
def test_cluster_names_become_portable_folder_names(tmp_path, make_images, cluster, folder):
    (path,) = make_images(tmp_path / "src", ["a.jpg"])
    report = export([ExportItem(path, (cluster,))], tmp_path / "out")
    assert report.complete
    assert report.results[0].target.parent.name == folder


def test_long_unicode_names_fit_the_byte_limit_even_with_a_suffix(tmp_path, make_images):
    long_name = ("ñandú_ß" * 40)[:120] + ".jpg"  # 120 characters, 166 UTF-8 bytes
    sources = make_images(tmp_path / "src", [f"a/{long_name}", f"b/{long_name}"])
    report = export([ExportItem(p, ("é" * 200,)) for p in sources], tmp_path / "out")

    assert report.complete
    names = sorted(r.target.name for r in report.results)
    assert names[0] == long_name
    assert names[1] == long_name[:-4] + "_2.jpg"
    assert len(report.results[0].target.parent.name.encode()) <= 100
    for result in report.results:
        assert sha256(result.target) == sha256(result.source)


def test_a_stem_at_the_byte_limit_is_shortened_to_make_room_for_the_suffix(
    tmp_path, make_images
):
    long_name = "é" * 125 + ".jpg"  # 254 bytes
    sources = make_images(tmp_path / "src", [f"a/{long_name}", f"b/{long_name}"])
    report = export([ExportItem(p, ("F",)) for p in sources], tmp_path / "out")
    second = max(r.target.name for r in report.results if r.target.name != long_name)
    assert second == "é" * 124 + "_2.jpg" and len(second.encode()) <= 255


def test_clusters_that_clash_once_made_safe_get_separate_folders():
    folders = plan_folders([("a:b",), ("a_b",), ("Roof",), ("roof",), ("x", "y")])
    assert folders[("a:b",)] == ("a_b",)
    assert folders[("a_b",)] == ("a_b_2",)
    assert {folders[("Roof",)], folders[("roof",)]} == {("Roof",), ("roof_2",)}
    assert folders[("x", "y")] == ("x", "y")


def test_companion_files_follow_their_image_with_the_same_suffix(tmp_path, make_images):
    a, b = make_images(tmp_path / "src", ["100/DJI_0001.JPG", "101/DJI_0001.JPG"])
    raw_a = a.with_suffix(".DNG")
    raw_b = b.with_suffix(".DNG")
    raw_a.write_bytes(b"raw a" * 100)
    raw_b.write_bytes(b"raw b" * 100)
    items = [
        ExportItem(a, ("F",), companions=(raw_a,)),
        ExportItem(b, ("F",), companions=(raw_b,)),
    ]

    report = export(items, tmp_path / "out")

    out = tmp_path / "out" / "F"
    assert sorted(p.name for p in out.iterdir()) == [
        "DJI_0001.DNG", "DJI_0001.JPG", "DJI_0001_2.DNG", "DJI_0001_2.JPG",
    ]  # fmt: skip
    assert (out / "DJI_0001_2.DNG").read_bytes() == raw_b.read_bytes()
    assert report.count(Status.COPIED) == 4


def test_dry_run_writes_nothing_and_lists_the_real_targets(tmp_path, flight):
    dest = tmp_path / "out"
    planned = export(items_for(flight), dest, dry_run=True)
    assert not dest.exists()
    assert planned.count(Status.PLANNED) == 4
    assert planned.bytes_needed == sum(p.stat().st_size for p in flight)
    assert "free at the destination" in planned.summary()
    real = export(items_for(flight), dest)
    assert [r.target for r in planned.results] == [r.target for r in real.results]
    assert export(items_for(flight), dest, dry_run=True).bytes_needed == 0


def test_move_removes_sources_only_after_verified_copies(tmp_path, flight, source_guard):
    digests = {p: sha256(p) for p in flight}
    source_guard.moved.update(flight)

    report = export(items_for(flight), tmp_path / "out", move=True)

    assert report.count(Status.MOVED) == 4
    for result in report.results:
        assert not result.source.exists()
        assert sha256(result.target) == digests[result.source]
    again = export(items_for(flight), tmp_path / "out", move=True)
    assert again.count(Status.ALREADY) == 4 and again.complete


def test_a_vanished_source_is_skipped_and_reported(tmp_path, flight, source_guard):
    flight[1].unlink()
    source_guard.moved.add(flight[1])
    report = export(items_for(flight), tmp_path / "out")
    assert report.count(Status.COPIED) == 3
    (missing,) = report.not_exported
    assert missing.source == flight[1] and missing.status is Status.SKIPPED
    assert "no longer exists" in missing.reason
    assert "not exported: " + os.fspath(flight[1]) in report.summary()


def test_cancel_stops_between_chunks_and_leaves_no_partial_file(tmp_path, make_images):
    paths = make_images(tmp_path / "src", [f"{i}.jpg" for i in range(3)], size=(1200, 900))
    calls = []

    def progress(state):
        calls.append(state)
        return state.files_done >= 1 and state.bytes_done > 0

    report = export([ExportItem(p, ("F",)) for p in paths], tmp_path / "out", progress=progress)

    assert report.cancelled and len(report.exported) == 1
    assert {r.status for r in report.not_exported} == {Status.NOT_ATTEMPTED}
    assert len(report.not_exported) == 2
    assert no_temp_files(tmp_path / "out")
    assert calls[-1].files_total == 3 and calls[-1].bytes_total == sum(
        p.stat().st_size for p in paths
    )


def test_a_full_disk_stops_cleanly_and_a_rerun_with_room_finishes(tmp_path, make_images, tmpfs):
    paths = make_images(
        tmp_path / "src", [f"IMG_{i:03d}.jpg" for i in range(12)], size=(400, 300)
    )
    sizes = sum(p.stat().st_size for p in paths)
    dest = tmpfs(sizes // 2)
    items = [ExportItem(p, ("F",)) for p in paths]

    refused = export(items, dest)
    assert "not enough space" in refused.stopped and "is free" in refused.stopped
    assert refused.exported == [] and list(dest.iterdir()) == []
    assert refused.bytes_needed == sizes

    # As if something else filled the disk meanwhile: copy what fits, then stop.
    report = export(items, dest, require_space=False)

    assert "no space left" in report.stopped
    assert 0 < len(report.exported) < 12
    assert len(report.exported) + len(report.not_exported) == 12
    for result in report.exported:
        assert sha256(result.target) == sha256(result.source)
    assert no_temp_files(dest)
    listed = sorted(p.name for p in (dest / "F").iterdir())
    assert listed == sorted(r.target.name for r in report.exported)

    remount(dest, f"size={sizes * 3}")
    again = export(items, dest)
    assert again.complete and len(again.exported) == 12
    assert len(list((dest / "F").iterdir())) == 12
    assert len(manifest_rows(dest)) == 12


def test_a_read_only_destination_stops_with_a_clear_reason(tmp_path, flight, tmpfs):
    dest = tmpfs(1 << 20)
    remount(dest, "ro")
    report = export(items_for(flight), dest / "export")
    assert "read-only" in report.stopped
    assert report.exported == [] and len(report.not_exported) == 4
    assert list(dest.iterdir()) == []


def test_a_read_only_cluster_folder_stops_and_keeps_what_was_exported(tmp_path, flight, tmpfs):
    dest = tmp_path / "out"
    locked = tmpfs(1 << 20, name="locked")
    (dest / "F2").mkdir(parents=True)
    subprocess.run(["mount", "--bind", os.fspath(locked), os.fspath(dest / "F2")], check=True)
    try:
        remount(dest / "F2", "ro,bind")
        items = [*items_for(flight[:2], ("F1",)), *items_for(flight[2:], ("F2",))]
        report = export(items, dest)
        assert "read-only" in report.stopped
        assert [r.source for r in report.exported] == flight[:2]
        for result in report.exported:
            assert sha256(result.target) == sha256(result.source)
        assert {r.source for r in report.not_exported} == set(flight[2:])
        assert {r["exported"] for r in manifest_rows(dest)} == {
            "F1/DJI_0001.JPG", "F1/DJI_0002.JPG",
        }  # fmt: skip
        assert no_temp_files(dest / "F1")
    finally:
        subprocess.run(["umount", "-l", os.fspath(dest / "F2")], check=False)


def test_a_vanished_destination_stops_the_export(tmp_path, flight):
    dest = tmp_path / "usb"

    def progress(state):
        if state.files_done == 1 and dest.exists():
            shutil.rmtree(dest)

    report = export(items_for(flight), dest, progress=progress)
    assert "vanished" in report.stopped
    assert len(report.not_exported) == 3
    assert not dest.exists()


def test_a_source_changed_during_its_copy_is_skipped(tmp_path, make_images):
    (good,) = make_images(tmp_path / "src", ["later.jpg"])  # sorts after the big one
    big = tmp_path / "live" / "growing.bin"
    big.parent.mkdir()
    big.write_bytes(np.random.default_rng(0).bytes(3 << 20))

    grown = []

    def progress(state):
        if state.current == big and state.bytes_done > 0 and not grown:
            grown.append(True)
            with open(big, "ab") as handle:
                handle.write(b"more")

    report = export(
        [ExportItem(big, ("F",)), ExportItem(good, ("F",))], tmp_path / "out", progress=progress
    )
    (skipped,) = report.not_exported
    assert skipped.source == big and "changed while it was copied" in skipped.reason
    assert sorted(p.name for p in (tmp_path / "out" / "F").iterdir()) == ["later.jpg"]


def test_a_file_where_a_cluster_folder_should_be_skips_that_cluster(tmp_path, flight):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "Roads").write_bytes(b"a file, not a folder")
    items = [*items_for(flight[:1], ("Roads",)), *items_for(flight[1:2], ("Fields",))]
    report = export(items, dest)
    assert [r.source for r in report.exported] == [flight[1]]
    (skipped,) = report.not_exported
    assert skipped.source == flight[0] and "Roads" in skipped.reason
    assert (dest / "Roads").read_bytes() == b"a file, not a folder"


def test_stale_temporary_files_of_a_killed_run_are_removed(tmp_path, flight):
    (tmp_path / "out" / "Fields").mkdir(parents=True)
    stale = tmp_path / "out" / "Fields" / ".softclust-0123456789ab.part"
    stale.write_bytes(b"half a photo")
    report = export(items_for(flight), tmp_path / "out")
    assert report.complete and not stale.exists()


def test_an_unplugged_drive_stops_the_export_instead_of_filling_the_mount_point(
    tmp_path, flight, tmpfs
):
    dest = tmpfs(1 << 20)
    copied_before = []

    def progress(state):
        if state.files_done == 2 and not copied_before:
            copied_before.extend(p.name for p in (dest / "Fields").iterdir())
            subprocess.run(["umount", "-l", os.fspath(dest)], check=True)

    report = export(items_for(flight), dest, progress=progress)
    assert "no longer on the same disk" in report.stopped
    assert len(report.exported) == 2 and len(copied_before) == 2
    assert list(dest.iterdir()) == []  # nothing written to the bare mount point


def test_move_from_a_read_only_card_copies_and_keeps_the_sources(
    tmp_path, flight, read_only_view
):
    card = read_only_view(tmp_path / "card")
    locked = sorted(card.rglob("*.JPG"))
    report = export(items_for(locked), tmp_path / "out", move=True)
    assert report.count(Status.COPIED) == 4 and report.complete
    assert len(report.kept_sources) == 4
    assert "the file system is read-only" in report.kept_sources[0].source_kept
    assert "source kept: " in report.summary()
    for result in report.results:
        assert result.source.exists() and sha256(result.target) == sha256(result.source)
