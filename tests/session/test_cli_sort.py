"""``softclust sort``: the whole chain on real aerial photos, headless."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from softclust_gui.cli.main import main
from softclust_gui.session.export import MANIFEST_NAME
from tests.session.conftest import remount, sha256

UCMERCED = Path(__file__).resolve().parents[3] / "shared/data/images/ucmerced-landuse"
CLASSES = ("forest", "beach", "harbor", "agricultural")


@pytest.fixture
def photos(tmp_path, source_guard):
    """24 real aerial photos of 4 classes, in two folders, some names repeated."""
    if not UCMERCED.is_dir():
        pytest.skip(f"the benchmark images are not at {UCMERCED}")
    src = tmp_path / "flight"
    for c, name in enumerate(CLASSES):
        for i in range(6):
            target = src / f"{100 + i % 2}MEDIA" / f"IMG_{c}{i // 2}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(UCMERCED / name / f"{name}{i:02d}.png", target)
            source_guard.add(target)
    return src


def sort(*args: str) -> int:
    return main(["sort", *args, "--model", "colour-texture", "--no-download"])


def exported_files(dest: Path) -> list[Path]:
    return sorted(p for p in dest.rglob("*.png"))


def test_sort_exports_every_image_once_with_a_manifest(photos, tmp_path, capsys):
    (photos / "100MEDIA" / "broken.jpg").write_bytes(b"not a jpeg")
    (photos / "101MEDIA" / "empty.jpg").write_bytes(b"")
    dest = tmp_path / "sorted"

    code = sort(os.fspath(photos), "--out", os.fspath(dest), "--clusters", "4")

    out = capsys.readouterr().out
    assert code == 1, out  # done, but two files were skipped
    assert "skipped " + os.fspath(photos / "100MEDIA" / "broken.jpg") in out
    assert "empty file (0 bytes)" in out
    assert "24 images exported to" in out
    files = exported_files(dest)
    assert len(files) == 24
    assert sorted(sha256(p) for p in files) == sorted(sha256(p) for p in photos.rglob("*.png"))
    leaves = {p.parent for p in files}
    assert len(leaves) == 4
    with open(dest / MANIFEST_NAME, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24 and {r["tree_path"] for r in rows} == {r["cluster"] for r in rows}

    again = sort(os.fspath(photos), "--out", os.fspath(dest), "--clusters", "4")
    out = capsys.readouterr().out
    assert again == 1
    assert "24 from the cache" in out and "24 already exported" in out
    assert exported_files(dest) == files


def test_a_clean_sort_exits_0_and_flat_gives_one_level(photos, tmp_path, capsys, source_guard):
    raw = photos / "100MEDIA" / "IMG_00.DNG"
    raw.write_bytes(b"raw sensor data" * 100)
    source_guard.add(raw)
    dest = tmp_path / "flat"
    assert sort(os.fspath(photos), "--out", os.fspath(dest), "--clusters", "3", "--flat") == 0
    files = exported_files(dest)
    assert len(files) == 24
    (image,) = [p for p in files if sha256(p) == sha256(photos / "100MEDIA" / "IMG_00.png")]
    assert image.with_suffix(".DNG").read_bytes() == raw.read_bytes()
    assert {p.parent.parent for p in files} == {dest}
    assert len({p.parent for p in files}) == 3
    assert "Time: features" in capsys.readouterr().out


def test_dry_run_lists_targets_and_writes_nothing(photos, tmp_path, capsys):
    dest = tmp_path / "plan"
    assert sort(os.fspath(photos), "--out", os.fspath(dest), "--dry-run") == 0
    out = capsys.readouterr().out
    assert not dest.exists()
    assert "24 images would be written to" in out
    assert out.count(" -> ") == 24


def test_move_removes_sources_after_verified_copies(photos, tmp_path, source_guard):
    digests = sorted(sha256(p) for p in photos.rglob("*.png"))
    source_guard.moved.update(photos.rglob("*.png"))
    dest = tmp_path / "moved"
    assert sort(os.fspath(photos), "--out", os.fspath(dest), "--move", "--clusters", "2") == 0
    assert not list(photos.rglob("*.png"))
    assert sorted(sha256(p) for p in exported_files(dest)) == digests


def test_automatic_cluster_count_gives_one_folder_per_look(tmp_path, capsys, source_guard):
    from tests.ui.photos import LOOKS, write_photos

    photos = write_photos(tmp_path / "looks", per_look=40)
    for path in photos:
        source_guard.add(path)
    dest = tmp_path / "auto"
    assert sort(os.fspath(tmp_path / "looks"), "--out", os.fspath(dest), "--clusters", "auto",
                "--flat") == 0  # fmt: skip
    folders = {p.parent for p in dest.rglob("*.jpg")}
    assert len(folders) == len(LOOKS)
    # Each folder holds the 40 photos of one look (the file names start with the look).
    looks = sorted(" ".join(sorted({p.name[:5] for p in f.iterdir()})) for f in folders)
    assert looks == [f"look{i}" for i in range(len(LOOKS))]


def test_automatic_cluster_count_on_one_look_exports_one_folder(tmp_path, capsys):
    from tests.ui.photos import write_photos

    write_photos(tmp_path / "one", per_look=40)
    for extra in (tmp_path / "one").glob("look[12]*"):
        extra.unlink()
    dest = tmp_path / "auto"
    assert (
        sort(os.fspath(tmp_path / "one"), "--out", os.fspath(dest), "--clusters", "auto") == 0
    )
    assert "No two distinct groups found" in capsys.readouterr().out
    assert len({p.parent for p in dest.rglob("*.jpg")}) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--clusters", "1"], "--clusters must be at least 2, got 1"),
        (["--clusters", "many"], "expected a whole number or 'auto', got 'many'"),
        (["--weights", "/nope/w.pth"], "--weights /nope/w.pth is not a file"),
    ],
)
def test_bad_usage_exits_2_with_the_reason(photos, tmp_path, capsys, extra, message):
    assert sort(os.fspath(photos), "--out", os.fspath(tmp_path / "o"), *extra) == 2
    assert message in capsys.readouterr().err


def test_dest_inside_source_or_missing_source_is_bad_usage(photos, tmp_path, capsys):
    assert sort(os.fspath(photos), "--out", os.fspath(photos / "sorted")) == 2
    assert "is inside SOURCE" in capsys.readouterr().err
    assert sort(os.fspath(tmp_path / "missing"), "--out", os.fspath(tmp_path / "o")) == 2
    assert "does not exist" in capsys.readouterr().err
    assert sort(os.fspath(photos), "--out", "x", "--criterion", "fast") == 2
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_nothing_to_export_exits_3(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no photos here")
    assert sort(os.fspath(tmp_path / "empty"), "--out", os.fspath(tmp_path / "o")) == 3
    assert "no images found" in capsys.readouterr().out


def test_a_read_only_destination_exits_3_and_says_why(photos, tmpfs, capsys):
    dest = tmpfs(64 << 20)
    remount(dest, "ro")
    assert sort(os.fspath(photos), "--out", os.fspath(dest / "sorted")) == 3
    assert "read-only" in capsys.readouterr().out


def test_sort_with_a_cnn_and_a_weights_file_the_test_saved(photos, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    weights = tmp_path / "mobilenet.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v3_large(weights=None).state_dict(), weights)
    dest = tmp_path / "cnn"
    code = main(
        ["sort", os.fspath(photos), "--out", os.fspath(dest), "--clusters", "4",
         "--model", "mobilenet_v3_large", "--weights", os.fspath(weights), "--device", "cpu"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "mobilenet_v3_large" in out
    assert len(exported_files(dest)) == 24


def test_the_installed_command_runs(tmp_path):
    exe = Path(sys.executable).parent / "softclust"
    if not exe.exists():
        pytest.skip(f"the softclust entry point is not installed next to {sys.executable}")
    done = subprocess.run([exe, "sort", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--clusters N" in done.stdout
