"""The SQLite cache: round trips, stale entries, corruption, threads, kills."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from softclust_gui import paths
from softclust_gui.imaging.cache import CACHE_FILE, FeatureCache, NewEntry
from softclust_gui.imaging.metadata import ImageMetadata
from softclust_gui.imaging.scan import ImageRecord


def _record(i: int, mtime_ns: int = 1_000) -> ImageRecord:
    return ImageRecord(
        Path(f"/card/DCIM/100MEDIA/DJI_{i:04d}.JPG"), 5_000 + i, mtime_ns, "jpeg"
    )


def _entry(record: ImageRecord, dim: int = 8) -> NewEntry:
    meta = ImageMetadata(width=5472, height=3648, latitude=1.5, relative_altitude=40.0)
    vector = np.arange(dim, dtype=np.float32) + record.size
    return NewEntry(
        record, meta, b"\xff\xd8thumb" + bytes([record.size % 256]), (256, 171), vector
    )


def test_round_trip_in_the_user_cache_folder():
    cache = FeatureCache()
    assert cache.path == paths.cache_dir() / CACHE_FILE
    records = [_record(i) for i in range(3)]
    cache.store([_entry(r) for r in records], "model-a")

    found = cache.features(records, "model-a")
    assert set(found) == {r.path for r in records}
    np.testing.assert_array_equal(found[records[1].path], _entry(records[1]).vector)
    assert cache.features(records, "model-b") == {}
    images = dict(cache.images(records))
    assert images[records[0]].thumbnail_size == (256, 171)
    assert images[records[0]].metadata.relative_altitude == 40.0
    assert cache.thumbnail(records[2].path) == _entry(records[2]).thumbnail
    assert cache.metadata(records[2].path).width == 5472
    assert cache.thumbnail("/nowhere.jpg") is None
    mode = sqlite3.connect(cache.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_changed_file_is_not_served_from_the_cache(tmp_path):
    cache = FeatureCache(tmp_path / "c.sqlite3")
    old = _record(1, mtime_ns=1_000)
    cache.store([_entry(old)], "m")
    edited = _record(1, mtime_ns=2_000)
    assert cache.features([edited], "m") == {}
    assert list(cache.images([edited])) == []


def test_failures_are_remembered_until_the_file_changes(tmp_path):
    cache = FeatureCache(tmp_path / "c.sqlite3")
    bad = _record(7)
    cache.store_failures([(bad, "truncated or corrupt image data")])
    assert cache.failures([bad]) == {bad.path: "truncated or corrupt image data"}
    assert cache.failures([_record(7, mtime_ns=5)]) == {}
    cache.store([_entry(bad)], "m")  # fixed and computed later
    assert cache.failures([bad]) == {}


def test_many_paths_are_looked_up_in_chunks(tmp_path):
    cache = FeatureCache(tmp_path / "c.sqlite3")
    records = [_record(i) for i in range(1_234)]
    cache.store([_entry(r, dim=4) for r in records], "m")
    assert len(cache.features(records, "m")) == 1_234


def test_corrupt_file_is_set_aside_and_rebuilt(tmp_path, caplog):
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"this is not an SQLite database" * 100)

    with caplog.at_level(logging.WARNING):
        cache = FeatureCache(path)

    assert "is damaged" in caplog.text and "moved to" in caplog.text
    aside = list(tmp_path.glob("c.sqlite3.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    cache.store([_entry(_record(1))], "m")
    assert len(cache.features([_record(1)], "m")) == 1


def test_a_new_cache_opened_by_many_threads_at_once_is_kept(tmp_path, caplog):
    # The app's sorting run and its thumbnail loader open a first-time cache together.
    for attempt in range(10):
        path = tmp_path / f"new-{attempt}.sqlite3"
        start = threading.Barrier(6)
        opened, errors = [], []

        def open_cache(path=path, start=start, opened=opened, errors=errors):
            start.wait()
            try:
                opened.append(FeatureCache(path))
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_cache) for _ in range(6)]
        with caplog.at_level(logging.WARNING):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert errors == [] and len(opened) == 6
        for cache in opened:
            cache.close()
    assert not list(tmp_path.glob("*.corrupt-*")) and "damaged" not in caplog.text


def test_reader_thread_sees_committed_rows(tmp_path):
    cache = FeatureCache(tmp_path / "c.sqlite3")
    cache.store([_entry(_record(1))], "m")
    seen = []
    thread = threading.Thread(target=lambda: seen.append(cache.thumbnail(_record(1).path)))
    thread.start()
    thread.join()
    assert seen == [_entry(_record(1)).thumbnail]
    cache.close()


_KILLER = """
import os, signal, sys
from pathlib import Path
import numpy as np
from softclust_gui.imaging.cache import FeatureCache, NewEntry
from softclust_gui.imaging.metadata import ImageMetadata
from softclust_gui.imaging.scan import ImageRecord

cache = FeatureCache(Path(sys.argv[1]))
def entry(i):
    rec = ImageRecord(Path(f"/img/{i}.jpg"), 10 + i, 1, "jpeg")
    return NewEntry(rec, ImageMetadata(), b"t", (1, 1), np.ones(4, np.float32))
cache.store([entry(0), entry(1)], "m")
conn = cache._connect()
def die(sql):
    if "INTO features" in sql:  # the images rows of this batch are written already
        os.kill(os.getpid(), signal.SIGKILL)
conn.set_trace_callback(die)
cache.store([entry(2), entry(3)], "m")
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_kill_in_the_middle_of_a_batch_leaves_the_cache_consistent(tmp_path):
    path = tmp_path / "c.sqlite3"
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(path)], timeout=60)
    assert proc.returncode == -signal.SIGKILL

    cache = FeatureCache(path)
    records = [ImageRecord(Path(f"/img/{i}.jpg"), 10 + i, 1, "jpeg") for i in range(4)]
    assert sorted(p.name for p in cache.features(records, "m")) == ["0.jpg", "1.jpg"]
    assert sorted(r.path.name for r, _ in cache.images(records)) == ["0.jpg", "1.jpg"]
