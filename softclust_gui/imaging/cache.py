"""The feature, thumbnail and metadata cache: one SQLite file in the user's cache folder.

Rows are keyed by image path and checked against the file's size and modification time, so
an edited or replaced file is computed again. Features are also keyed by the extractor's
identity (model, weights hash, preprocessing). Every write is one transaction in WAL mode:
a crash or a kill leaves either the old rows or the new ones. A file that SQLite cannot
read is moved aside (``*.corrupt-<time>``) and a new cache is started, with a warning.

Each thread gets its own connection, so a GUI thread can read thumbnails while the
pipeline writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from softclust_gui import paths
from softclust_gui.imaging.metadata import ImageMetadata
from softclust_gui.imaging.scan import ImageRecord

logger = logging.getLogger(__name__)

CACHE_FILE = "imaging-cache.sqlite3"
SCHEMA_VERSION = 1
PREPARE_ATTEMPTS = 5
_PREPARE_LOCK = threading.Lock()  # openers of a cache in this process take turns
_CHUNK = 500  # paths per SELECT ... IN (...)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    metadata TEXT NOT NULL, thumbnail BLOB NOT NULL,
    thumb_width INTEGER NOT NULL, thumb_height INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS features (
    path TEXT NOT NULL, extractor TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (path, extractor));
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    reason TEXT NOT NULL);
"""


@dataclass(frozen=True)
class CachedImage:
    """The cached thumbnail and metadata of one image."""

    thumbnail: bytes
    thumbnail_size: tuple[int, int]
    metadata: ImageMetadata


@dataclass(frozen=True)
class NewEntry:
    """Everything the pipeline learned about one image, written in one transaction."""

    record: ImageRecord
    metadata: ImageMetadata
    thumbnail: bytes
    thumbnail_size: tuple[int, int]
    vector: np.ndarray  # (d,) float32


def default_cache_path() -> Path:
    return paths.cache_dir() / CACHE_FILE


class FeatureCache:
    """The SQLite cache. Use one object per file; it is safe to share between threads.

    Parameters
    ----------
    path : Path, optional
        The database file; default ``paths.cache_dir() / CACHE_FILE``.
    """

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._open_or_rebuild()

    # -- connections --------------------------------------------------------------------

    def _open_or_rebuild(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._prepare_when_free()
        except (sqlite3.OperationalError, sqlite3.IntegrityError):
            raise  # busy, locked or unwritable: not damage, so the file is left alone
        except sqlite3.DatabaseError as exc:
            self.close()
            aside = self.path.with_name(
                f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
            )
            logger.warning(
                "The image cache %s is damaged (%s); it was moved to %s and a new one is "
                "being built. Features will be computed again.",
                self.path,
                exc,
                aside,
            )
            self.path.replace(aside)
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    side.replace(aside.with_name(aside.name + suffix))
            self._local = threading.local()
            self._prepare_when_free()

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _prepare_when_free(self) -> None:
        """``_prepare`` on this thread's connection, waiting out other openers.

        Switching a new file to WAL and creating its tables takes locks that SQLite does
        not wait for by itself, so openers in this process take turns, and one that
        finds the file locked by another process tries again a few times.
        """
        for attempt in range(PREPARE_ATTEMPTS):
            try:
                with _PREPARE_LOCK:
                    self._prepare(self._connect())
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == PREPARE_ATTEMPTS - 1:
                    raise
                logger.debug("cache %s is locked; trying again", self.path)
                time.sleep(0.2 * (attempt + 1))

    def _prepare(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("PRAGMA quick_check").fetchone()
        if row is None or row[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {row}")
        with conn:
            conn.executescript(_SCHEMA)
            # Another thread or process may be creating the same new file: the first
            # version row written wins, and every opener checks that one.
            conn.execute(
                "INSERT OR IGNORE INTO info VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
            )
            found = conn.execute("SELECT value FROM info WHERE key='schema'").fetchone()
            if int(found[0]) != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"schema version {found[0]}, this app writes {SCHEMA_VERSION}"
                )

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reads --------------------------------------------------------------------------

    def features(
        self, records: Iterable[ImageRecord], extractor_key: str
    ) -> dict[Path, np.ndarray]:
        """Cached vectors, (d,) float32, of those ``records`` that are still current."""
        out: dict[Path, np.ndarray] = {}
        sql = "SELECT path, size, mtime_ns, vector FROM features WHERE extractor=? AND path IN"
        for row, record in self._rows(records, sql, (extractor_key,)):
            out[record.path] = np.frombuffer(row[3], dtype=np.float32).copy()
        return out

    def images(
        self, records: Iterable[ImageRecord]
    ) -> Iterator[tuple[ImageRecord, CachedImage]]:
        """Cached thumbnails and metadata of those ``records`` that are still current."""
        sql = (
            "SELECT path, size, mtime_ns, thumbnail, thumb_width, thumb_height, metadata "
            "FROM images WHERE path IN"
        )
        for row, record in self._rows(records, sql, ()):
            meta = ImageMetadata.from_dict(json.loads(row[6]))
            yield record, CachedImage(row[3], (row[4], row[5]), meta)

    def failures(self, records: Iterable[ImageRecord]) -> dict[Path, str]:
        """Reasons for images that failed before and have not changed since."""
        sql = "SELECT path, size, mtime_ns, reason FROM failures WHERE path IN"
        return {record.path: row[3] for row, record in self._rows(records, sql, ())}

    def thumbnail(self, path: str | Path) -> bytes | None:
        """The cached thumbnail JPEG of the image at ``path``, whatever its version."""
        row = (
            self._connect()
            .execute("SELECT thumbnail FROM images WHERE path=?", (str(path),))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def metadata(self, path: str | Path) -> ImageMetadata | None:
        row = (
            self._connect()
            .execute("SELECT metadata FROM images WHERE path=?", (str(path),))
            .fetchone()
        )
        return None if row is None else ImageMetadata.from_dict(json.loads(row[0]))

    def _rows(self, records, sql, params):
        conn = self._connect()
        wanted = {str(r.path): r for r in records}
        keys = list(wanted)
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"{sql} ({marks})", (*params, *chunk)):
                record = wanted[row[0]]
                if row[1] == record.size and row[2] == record.mtime_ns:
                    yield row, record

    # -- writes -------------------------------------------------------------------------

    def store(self, entries: list[NewEntry], extractor_key: str) -> None:
        """Write thumbnails, metadata and features of ``entries`` in one transaction."""
        if not entries:
            return
        images = [
            (
                str(e.record.path),
                e.record.size,
                e.record.mtime_ns,
                json.dumps(e.metadata.to_dict()),
                e.thumbnail,
                *e.thumbnail_size,
            )
            for e in entries
        ]
        feats = [
            (
                str(e.record.path),
                extractor_key,
                e.record.size,
                e.record.mtime_ns,
                int(e.vector.shape[0]),
                np.ascontiguousarray(e.vector, np.float32).tobytes(),
            )
            for e in entries
        ]
        conn = self._connect()
        with conn:
            conn.executemany("INSERT OR REPLACE INTO images VALUES (?,?,?,?,?,?,?)", images)
            conn.executemany("INSERT OR REPLACE INTO features VALUES (?,?,?,?,?,?)", feats)
            conn.executemany("DELETE FROM failures WHERE path=?", [(row[0],) for row in images])

    def store_failures(self, failures: list[tuple[ImageRecord, str]]) -> None:
        """Remember images that could not be decoded, so the next run skips them fast."""
        if not failures:
            return
        rows = [(str(r.path), r.size, r.mtime_ns, reason) for r, reason in failures]
        conn = self._connect()
        with conn:
            conn.executemany("INSERT OR REPLACE INTO failures VALUES (?,?,?,?)", rows)
