"""Offload from a card mounted read-only: layout kept, verified, only new files copied."""

from __future__ import annotations

import pytest

from softclust_gui.session.export import Status
from softclust_gui.session.offload import offload
from tests.session.conftest import sha256


@pytest.fixture
def card_folder(tmp_path, make_images, source_guard):
    root = tmp_path / "card-files"
    make_images(root, ["DCIM/100MEDIA/DJI_0001.JPG", "DCIM/100MEDIA/DJI_0002.JPG"])
    make_images(root, ["DCIM/101MEDIA/DJI_0001.JPG"])
    raw = root / "DCIM/100MEDIA/DJI_0001.DNG"
    raw.write_bytes(b"raw" * 1000)
    source_guard.add(raw)
    (root / "System Volume Information").mkdir()
    (root / "System Volume Information" / "IndexerVolumeGuid").write_bytes(b"x")
    (root / "DCIM" / "100MEDIA" / "._DJI_0001.JPG").write_bytes(b"mac junk")
    return root


def relative_files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_offload_keeps_layout_and_skips_system_files(tmp_path, card_folder, read_only_view):
    card = read_only_view(card_folder)
    report = offload(card, tmp_path / "local")
    assert report.complete and report.count(Status.COPIED) == 4
    assert relative_files(tmp_path / "local") == [
        "DCIM/100MEDIA/DJI_0001.DNG",
        "DCIM/100MEDIA/DJI_0001.JPG",
        "DCIM/100MEDIA/DJI_0002.JPG",
        "DCIM/101MEDIA/DJI_0001.JPG",
    ]
    for result in report.results:
        assert sha256(result.target) == sha256(result.source) == result.sha256
        assert result.target.stat().st_mtime_ns == result.source.stat().st_mtime_ns


def test_second_offload_copies_only_new_files(tmp_path, card_folder, make_images):
    first = offload(card_folder, tmp_path / "local")
    stamps = {r.target: r.target.stat().st_ino for r in first.results}
    (new,) = make_images(card_folder, ["DCIM/101MEDIA/DJI_0002.JPG"])

    second = offload(card_folder, tmp_path / "local")

    assert second.count(Status.ALREADY) == 4 and second.count(Status.COPIED) == 1
    assert next(r for r in second.results if r.status is Status.COPIED).source == new
    assert {t: t.stat().st_ino for t in stamps} == stamps


def test_a_different_file_under_the_same_name_gets_a_suffix_with_its_companion(
    tmp_path, card_folder
):
    local = tmp_path / "local" / "DCIM" / "100MEDIA"
    local.mkdir(parents=True)
    (local / "DJI_0001.JPG").write_bytes(b"an older flight's photo")

    report = offload(card_folder, tmp_path / "local")

    assert (local / "DJI_0001.JPG").read_bytes() == b"an older flight's photo"
    assert sha256(local / "DJI_0001_2.JPG") == sha256(
        card_folder / "DCIM/100MEDIA/DJI_0001.JPG"
    )
    assert (local / "DJI_0001_2.DNG").read_bytes() == b"raw" * 1000
    assert not (local / "DJI_0001.DNG").exists()
    assert report.complete


def test_offload_onto_a_full_disk_stops_and_names_what_was_not_copied(
    tmp_path, make_images, tmpfs
):
    paths = make_images(
        tmp_path / "card", [f"DCIM/{i:03d}.jpg" for i in range(8)], size=(400, 300)
    )
    dest = tmpfs(sum(p.stat().st_size for p in paths) // 2)
    refused = offload(tmp_path / "card", dest)
    assert "not enough space" in refused.stopped and list(dest.iterdir()) == []

    # Something else fills the disk during the offload: what fits is copied, then stop.
    report = offload(tmp_path / "card", dest, require_space=False)
    assert "no space left" in report.stopped
    assert len(report.exported) + len(report.not_exported) == 8 and report.not_exported
    for result in report.exported:
        assert sha256(result.target) == sha256(result.source)
    assert not [p for p in dest.rglob("*.part")]


def test_offload_of_a_missing_card_or_onto_the_card_says_so(tmp_path, card_folder):
    with pytest.raises(FileNotFoundError, match="it is not a folder"):
        offload(tmp_path / "gone", tmp_path / "local")
    with pytest.raises(ValueError, match="the target is on the card itself"):
        offload(card_folder, card_folder / "backup")
    assert not (card_folder / "backup").exists()


def test_offload_command_copies_then_skips_and_refuses_a_dest_on_the_card(
    tmp_path, card_folder, capsys
):
    from softclust_gui.cli.main import main

    assert main(["offload", str(card_folder), str(tmp_path / "local")]) == 0
    assert "4 copied" in capsys.readouterr().out
    assert main(["offload", str(card_folder), str(tmp_path / "local")]) == 0
    assert ": 4 already there." in capsys.readouterr().out
    assert main(["offload", str(card_folder), str(card_folder / "copy")]) == 2
    assert "is on the card" in capsys.readouterr().err
    assert main(["offload", str(tmp_path / "nope"), str(tmp_path / "x")]) == 2


def test_a_killed_offload_leaves_no_partial_file_after_the_next_run(tmp_path, card_folder):
    local = tmp_path / "local" / "DCIM" / "100MEDIA"
    local.mkdir(parents=True)
    stale = local / ".softclust-00aa11bb22cc.part"
    stale.write_bytes(b"the first half of DJI_0002.JPG")
    report = offload(card_folder, tmp_path / "local")
    assert report.complete and not stale.exists()
    assert sorted(p.name for p in local.iterdir()) == [
        "DJI_0001.DNG", "DJI_0001.JPG", "DJI_0002.JPG",
    ]  # fmt: skip


def test_a_card_pulled_out_midway_stops_the_offload(tmp_path, make_images, source_guard):
    card = tmp_path / "card"
    paths = make_images(card, [f"DCIM/{i}.jpg" for i in range(4)])
    source_guard.moved.update(paths)  # the "card" is gone at the end

    def progress(state):
        if state.files_done == 1 and card.exists():
            card.rename(tmp_path / "pulled")

    report = offload(card, tmp_path / "local", progress=progress)
    assert "was removed" in report.stopped
    assert len(report.exported) == 1 and len(report.not_exported) == 3
