"""Scanning folders and cards: layouts, companions, skipped files, loops, cards."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _images import dji_xmp, write_jpeg

from softclust_gui.imaging import find_card_volumes, scan_source


def _reasons(result) -> dict[str, str]:
    return {item.path.name: item.reason for item in result.skipped}


def test_card_layout_walks_dcim_and_links_companions(card):
    result = scan_source(card)

    assert result.layout == "camera card"
    assert result.root == card / "DCIM"
    names = [str(r.path.relative_to(card)) for r in result.images]
    assert names == [
        "DCIM/100MEDIA/DJI_0001.JPG",
        "DCIM/100MEDIA/DJI_0002.JPG",
        "DCIM/100MEDIA/DJI_0003.JPG",
        "DCIM/DJI_001/nested/DJI_0001.JPG",
    ]
    first = result.images[0]
    assert [p.name for p in first.companions] == ["DJI_0001.DNG"]
    assert first.kind == "jpeg"
    assert first.size == (card / names[0]).stat().st_size
    assert first.mtime_ns == (card / names[0]).stat().st_mtime_ns
    # The same base name in another folder is another image, not a companion.
    assert result.images[3].companions == ()


def test_other_files_are_skipped_with_reasons(card):
    reasons = _reasons(scan_source(card))

    assert reasons["DJI_0004.MP4"] == "video file"
    assert reasons["DJI_0004.SRT"] == "flight telemetry subtitles (.SRT)"
    assert reasons["DJI_0004.LRF"] == "low-resolution video proxy (DJI .LRF)"
    assert reasons[".DS_Store"] == "hidden file"
    assert "log.txt" not in reasons  # outside DCIM on a card


def test_plain_folder_recurses_and_reports_unknown_kinds(tmp_path):
    write_jpeg(tmp_path / "a" / "b" / "deep.jpeg", 64, 48)
    (tmp_path / "notes.docx").write_bytes(b"PK")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / ".cache").mkdir()
    write_jpeg(tmp_path / ".cache" / "hidden.jpg", 64, 48)

    result = scan_source(tmp_path)

    assert result.layout == "folder"
    assert [r.path.name for r in result.images] == ["deep.jpeg"]
    reasons = _reasons(result)
    assert reasons["notes.docx"] == "not an image kind the app reads (.docx)"
    assert reasons["empty.jpg"] == "empty file (0 bytes)"
    assert reasons[".cache"] == "hidden folder"


def test_metadata_read_on_request(card):
    plain = scan_source(card)
    assert plain.images[0].metadata is None

    meta = scan_source(card, metadata=True).images[0].metadata
    assert (meta.width, meta.height, meta.orientation) == (320, 240, 1)
    assert meta.captured_at == "2024-05-01T10:20:30"
    assert (meta.camera_make, meta.camera_model) == ("DJI", "FC6310")
    assert meta.latitude == pytest.approx(-(33 + 51 / 60 + 36 / 3600))
    assert meta.longitude == pytest.approx(151 + 12 / 60 + 54 / 3600)
    assert meta.altitude == pytest.approx(120.5)
    assert meta.relative_altitude == pytest.approx(48.3)
    assert meta.gimbal_pitch == pytest.approx(-90.0)
    assert meta.flight_yaw == pytest.approx(12.5)


def test_dji_xmp_in_element_form_and_missing_gps(tmp_path):
    xmp = dji_xmp().replace(
        b'drone-dji:FlightYawDegree="+12.50"/>',
        b"><drone-dji:FlightYawDegree>-170.2</drone-dji:FlightYawDegree></rdf:Description>",
    )
    write_jpeg(tmp_path / "x.jpg", 64, 48, gps=False, xmp=xmp)
    meta = scan_source(tmp_path, metadata=True).images[0].metadata
    assert meta.flight_yaw == pytest.approx(-170.2)
    assert meta.latitude is None and meta.altitude is None


def test_symlink_loop_is_reported_not_followed_forever(tmp_path):
    write_jpeg(tmp_path / "flight" / "DJI_0001.JPG", 64, 48)
    os.symlink(tmp_path, tmp_path / "flight" / "loop")

    result = scan_source(tmp_path)

    assert [r.path.name for r in result.images] == ["DJI_0001.JPG"]
    assert _reasons(result)["loop"] == "symlink loop: this folder was already scanned"


def test_file_that_vanishes_is_reported(tmp_path):
    # A dangling link behaves like a file deleted between the listing and its stat.
    write_jpeg(tmp_path / "kept.jpg", 64, 48)
    os.symlink(tmp_path / "gone.jpg", tmp_path / "DJI_0009.JPG")

    result = scan_source(tmp_path)

    assert [r.path.name for r in result.images] == ["kept.jpg"]
    assert _reasons(result)["DJI_0009.JPG"].startswith("file vanished during the scan")


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="root reads folders whatever their permissions",
)
def test_unreadable_folder_is_reported(tmp_path):
    locked = tmp_path / "locked"
    write_jpeg(locked / "a.jpg", 64, 48)
    locked.chmod(0)
    try:
        result = scan_source(tmp_path)
    finally:
        locked.chmod(0o755)
    assert result.images == []
    assert _reasons(result)["locked"].startswith("folder could not be read")


def test_missing_source_raises_a_plain_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan_source(tmp_path / "unplugged")


def test_cancel_stops_the_scan(tmp_path):
    import threading

    write_jpeg(tmp_path / "a.jpg", 64, 48)
    cancel = threading.Event()
    cancel.set()
    result = scan_source(tmp_path, cancel=cancel)
    assert result.cancelled and result.images == []


def test_scan_writes_nothing(card):
    before = {p: p.stat().st_mtime_ns for p in card.rglob("*")}
    scan_source(card, metadata=True)
    assert {p: p.stat().st_mtime_ns for p in card.rglob("*")} == before


def test_card_volumes_found_under_mount_roots(card, tmp_path):
    mounts = card.parent  # .../media/user
    (mounts / "USB_STICK").mkdir()
    (mounts / "USB_STICK" / "report.pdf").write_bytes(b"%PDF")
    other = mounts / "CAMERA"
    (other / "dcim").mkdir(parents=True)  # lower-case DCIM as some cameras write it

    volumes = find_card_volumes([mounts, tmp_path / "no-such-root"])

    assert sorted(v.root for v in volumes) == sorted([card, other])
    by_root = {v.root: v for v in volumes}
    assert by_root[card].dcim == card / "DCIM"
    assert by_root[card].label == "DJI_CARD"
    assert by_root[other].dcim == other / "dcim"


def test_single_file_source(card):
    path = card / "DCIM" / "100MEDIA" / "DJI_0002.JPG"
    result = scan_source(path)
    assert result.layout == "file"
    assert [r.path for r in result.images] == [Path(path)]
    first = scan_source(path.with_name("DJI_0001.JPG"))
    assert [p.name for p in first.images[0].companions] == ["DJI_0001.DNG"]
