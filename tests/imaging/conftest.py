"""Fixtures of the imaging tests: a drone card laid out as it is mounted."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _images import dji_xmp, write_jpeg

from softclust_gui import paths


@pytest.fixture
def card(tmp_path) -> Path:
    """A drone card as mounted at /media/user/DJI_CARD, with companions and clutter."""
    root = tmp_path / "media" / "user" / "DJI_CARD"
    flight = root / "DCIM" / "100MEDIA"
    for i in range(1, 4):
        write_jpeg(flight / f"DJI_{i:04d}.JPG", 320, 240, seed=i, xmp=dji_xmp())
    (flight / "DJI_0001.DNG").write_bytes(b"II*\x00fake raw")
    (flight / "DJI_0004.MP4").write_bytes(b"\x00" * 64)
    (flight / "DJI_0004.SRT").write_text("1\n00:00:00,000 --> 00:00:01,000\n")
    (flight / "DJI_0004.LRF").write_bytes(b"\x00" * 64)
    second = root / "DCIM" / "DJI_001" / "nested"
    write_jpeg(second / "DJI_0001.JPG", 320, 240, seed=9)  # the same name again
    (root / "DCIM" / "100MEDIA" / ".DS_Store").write_bytes(b"x")
    (root / "MISC").mkdir()
    (root / "MISC" / "log.txt").write_text("not scanned: outside DCIM")
    return root


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """No bundled weights and an empty torch hub cache."""
    monkeypatch.setattr(paths, "resources_dir", lambda: tmp_path / "resources")
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield
    torch.hub.set_dir(old)
