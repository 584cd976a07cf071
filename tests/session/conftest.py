"""Real files for the session tests: JPEGs written here, and small file systems mounted here.

Every source file a test creates through ``make_images`` is hashed when it is written and
again when the test ends: a test fails if any source byte changed (files a test moves on
purpose are checked at their new place by the test itself).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_jpeg(path: Path, seed: int, size: tuple[int, int] = (64, 48), quality: int = 90):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=quality)
    return path


class SourceGuard:
    """Remembers the SHA-256 of source files and checks them at the end of the test."""

    def __init__(self):
        self.hashes: dict[Path, str] = {}
        self.moved: set[Path] = set()

    def add(self, path: Path) -> Path:
        self.hashes[Path(path)] = sha256(path)
        return path

    def check(self) -> None:
        for path, digest in self.hashes.items():
            if path in self.moved:
                continue
            assert path.exists(), f"source {path} disappeared"
            assert sha256(path) == digest, f"source {path} was modified"


@pytest.fixture
def source_guard():
    guard = SourceGuard()
    yield guard
    guard.check()


@pytest.fixture
def make_images(source_guard):
    """``make_images(root, ["a/DJI_0001.JPG", ...])`` writes distinct real JPEGs."""

    counter = iter(range(1_000_000))

    def make(root: Path, names, size=(64, 48)) -> list[Path]:
        paths = []
        for name in names:
            path = write_jpeg(Path(root) / name, seed=next(counter), size=size)
            paths.append(source_guard.add(path))
        return paths

    return make


def _mount(args: list[str]) -> str:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "mounting needs root and the mount command"
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    return "" if done.returncode == 0 else f"mount refused: {done.stderr.strip()}"


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", os.fspath(path)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(size_bytes)`` mounts a fresh tmpfs of that size and returns its path."""
    mounted: list[Path] = []

    def mount(size: int, name: str = "mnt") -> Path:
        point = tmp_path / name
        point.mkdir()
        problem = _mount(["-t", "tmpfs", "-o", f"size={size}", "tmpfs", os.fspath(point)])
        if problem:
            pytest.skip(f"cannot mount a tmpfs for this test: {problem}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        _unmount(point)


def remount(point: Path, options: str) -> None:
    """Change a mounted tmpfs's options (``"ro"``, ``"rw,size=2m"``); skip if refused."""
    problem = _mount(["-o", f"remount,{options}", os.fspath(point)])
    if problem:
        pytest.skip(f"cannot remount {point}: {problem}")


@pytest.fixture
def read_only_view(tmp_path):
    """``read_only_view(folder)``: a read-only bind mount of ``folder`` (like a locked card)."""
    mounted: list[Path] = []

    def view(folder: Path) -> Path:
        point = tmp_path / f"ro-{len(mounted)}"
        point.mkdir()
        problem = _mount(["--bind", os.fspath(folder), os.fspath(point)])
        if problem:
            pytest.skip(f"cannot bind-mount for this test: {problem}")
        mounted.append(point)
        problem = _mount(["-o", "remount,ro,bind", os.fspath(point)])
        if problem:
            pytest.skip(f"cannot make a read-only bind mount: {problem}")
        return point

    yield view
    for point in reversed(mounted):
        _unmount(point)
