"""Saving sessions to SQLite after every edit, and opening them again.

One file per source under ``paths.data_dir()/sessions``. Each edit writes only the rows it
touched, in one transaction with ``synchronous=FULL``: a crash, a kill or a closed lid
loses at most the edit being written, and the file is never half-updated. A new session
for a source is written to a temporary file first and renamed over the old one.

The file says which schema wrote it (``PRAGMA user_version``); a newer one, a damaged
file or a file that is not a session raises ``SessionFileError`` with a sentence for the
user, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from softclust_gui import __version__, paths
from softclust_gui.session.model import (
    ROOT,
    ImageEntry,
    NodeState,
    Session,
    restore_session,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
APPLICATION_ID = 0x53436C75  # "SClu": tells our files from other SQLite files
SUFFIX = ".softclust-session"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, metadata TEXT NOT NULL,
    class_name TEXT, companions TEXT NOT NULL, node INTEGER NOT NULL,
    excluded INTEGER NOT NULL DEFAULT 0);
CREATE TABLE nodes (
    id INTEGER PRIMARY KEY, parent INTEGER, position INTEGER NOT NULL,
    name TEXT NOT NULL, named_by_user INTEGER NOT NULL, settings TEXT);
"""


class SessionFileError(Exception):
    """A session file that cannot be opened; the message says why and what to do."""


def sessions_dir() -> Path:
    folder = paths.data_dir() / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def session_path_for(source: Path | str) -> Path:
    """Where the session of ``source`` is saved: a readable slug plus a hash of the path."""
    resolved = os.path.normcase(os.path.abspath(os.fspath(source)))
    digest = hashlib.sha256(resolved.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(resolved).name)[:40].strip("-") or "source"
    return sessions_dir() / f"{slug}-{digest}{SUFFIX}"


def find_saved_session(source: Path | str) -> Path | None:
    """The saved session of ``source`` if there is one, to offer resuming it."""
    path = session_path_for(source)
    return path if path.is_file() else None


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(os.fspath(path), check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _node_row(session: Session, node_id: int) -> tuple:
    state = session.node(node_id)
    position = 0 if state.parent is None else session.node(state.parent).children.index(node_id)
    settings = None if state.settings is None else json.dumps(state.settings)
    return (node_id, state.parent, position, state.name, int(state.named_by_user), settings)


def _image_row(session: Session, image_id: int) -> tuple:
    entry = session.images[image_id]
    return (
        image_id,
        os.fspath(entry.path),
        json.dumps(entry.metadata, default=str),
        entry.class_name,
        json.dumps([os.fspath(p) for p in entry.companions]),
        session.node_of(image_id),
        int(session.is_excluded(image_id)),
    )


class SessionStore:
    """The open session file of one session; ``save_changes`` is called after each edit."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self._conn = conn
        self._lock = threading.Lock()
        self.error = ""  # the last save's failure, empty when saved

    def save_changes(self, session: Session, node_ids: Iterable[int], flipped: Iterable[int]):
        """Write the touched nodes, their images and flipped exclusions in one transaction.

        Never raises: a failure (disk full, device gone) is logged and kept in ``error``,
        and the next save rewrites the whole file so nothing stays missing.
        """
        with self._lock:
            try:
                if self.error:
                    self._rewrite(session)
                else:
                    self._write_changes(session, set(node_ids), flipped)
                self.error = ""
            except (sqlite3.Error, OSError) as exc:
                self.error = f"could not save the session to {self.path}: {exc}"
                logger.error("%s", self.error)

    def _write_changes(self, session: Session, node_ids: set[int], flipped) -> None:
        present = [n for n in node_ids if n in session._nodes]
        positions = []
        images = []
        for node_id in present:
            state = session.node(node_id)
            positions += [(i, c) for i, c in enumerate(state.children)]
            images += [(node_id, i) for i in state.images]
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "DELETE FROM nodes WHERE id = ?",
                [(n,) for n in node_ids if n not in session._nodes],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?, ?, ?)",
                [_node_row(session, n) for n in present],
            )
            conn.executemany("UPDATE nodes SET position = ? WHERE id = ?", positions)
            conn.executemany("UPDATE images SET node = ? WHERE id = ?", images)
            conn.executemany(
                "UPDATE images SET excluded = ? WHERE id = ?",
                [(int(session.is_excluded(i)), i) for i in flipped],
            )
            self._set_meta(session)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _rewrite(self, session: Session) -> None:
        self._conn.close()
        _write_full(session, self.path)
        self._conn = _connect(self.path)

    def _set_meta(self, session: Session) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [("next_id", str(session._next_id)), ("saved_at", str(time.time()))],
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def save_session(session: Session, path: Path | None = None) -> SessionStore:
    """Write the whole session to a new file (replacing any older one atomically).

    Afterwards every edit of ``session`` is saved to that file as it happens.
    """
    path = Path(path) if path is not None else session_path_for(session.source)
    _write_full(session, path)
    if session.store is not None:
        session.store.close()
    session.store = SessionStore(path, _connect(path))
    logger.info("Session of %s saved to %s", session.source, path)
    return session.store


def _write_full(session: Session, path: Path) -> None:
    """The whole session into a temporary file beside ``path``, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.new")
    temp.unlink(missing_ok=True)
    conn = _connect(temp)
    try:
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN")
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [
                ("source", os.fspath(session.source)),
                ("app_version", __version__),
                ("created_at", str(time.time())),
            ],
        )
        conn.executemany(
            "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_image_row(session, i) for i in range(len(session.images))),
        )
        conn.executemany(
            "INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?)",
            (_node_row(session, n) for n in session.node_ids()),
        )
        SessionStore(temp, conn)._set_meta(session)
        conn.execute("COMMIT")
        conn.close()
        os.replace(temp, path)
    except BaseException:
        conn.close()
        temp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class SavedSessionInfo:
    """What a "resume?" question shows, read without loading the session."""

    path: Path
    source: Path
    images: int
    clusters: int  # leaves of the tree
    saved_at: float  # seconds since the epoch


def describe_saved_session(path: Path | str) -> SavedSessionInfo:
    """Source, counts and time of a saved session; ``SessionFileError`` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise SessionFileError(f"There is no saved session at {path}.")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise _damaged(path, str(exc)) from exc
    try:
        _check_header(path, conn)
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        images = conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        leaves = conn.execute(
            "SELECT COUNT(*) FROM nodes WHERE id NOT IN "
            "(SELECT parent FROM nodes WHERE parent IS NOT NULL)"
        ).fetchone()[0]
        saved_at = float(meta.get("saved_at", meta["created_at"]))
        return SavedSessionInfo(path, Path(meta["source"]), images, leaves, saved_at)
    except sqlite3.Error as exc:
        raise _damaged(path, str(exc)) from exc
    except (KeyError, ValueError) as exc:
        raise _damaged(path, f"missing {exc}") from exc
    finally:
        conn.close()


def _damaged(path: Path, detail: str) -> SessionFileError:
    return SessionFileError(
        f"The saved session {path} is damaged or is not a SoftClust session ({detail}). "
        "Start a new session for this folder; the file is left as it is."
    )


def open_session(path: Path | str, features=None) -> Session:
    """Open a saved session; later edits are saved to the same file.

    Parameters
    ----------
    path : Path or str
        A file written by ``save_session`` (see ``find_saved_session``).
    features : np.ndarray, shape (n_images, d), optional
        Feature vectors aligned with the saved images (features are not saved here;
        the imaging cache gives them back quickly).

    Raises
    ------
    SessionFileError
        The file is missing, damaged, not a session, or from a newer SoftClust.
    """
    path = Path(path)
    if not path.is_file():
        raise SessionFileError(f"There is no saved session at {path}.")
    try:
        conn = _connect(path)
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, str(exc)) from exc
    try:
        session = _read(path, conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _damaged(path, str(exc)) from exc
    except (AssertionError, KeyError, ValueError, TypeError) as exc:
        conn.close()
        raise _damaged(path, f"inconsistent content: {exc}") from exc
    except SessionFileError:
        conn.close()
        raise
    if features is not None:
        session.set_features(features)
    session.store = SessionStore(path, conn)
    return session


def _check_header(path: Path, conn: sqlite3.Connection) -> None:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app_id != APPLICATION_ID:
        raise _damaged(path, "it was not written by SoftClust")
    if version > SCHEMA_VERSION:
        raise SessionFileError(
            f"The saved session {path} was written by a newer SoftClust (session format "
            f"{version}; this version reads up to {SCHEMA_VERSION}). Update SoftClust to "
            "resume it, or start a new session for this folder."
        )


def _read(path: Path, conn: sqlite3.Connection) -> Session:
    _check_header(path, conn)
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    images, excluded = [], []
    for row in conn.execute("SELECT * FROM images ORDER BY id"):
        image_id, file, metadata, class_name, companions, _node, is_excluded = row
        if image_id != len(images):
            raise ValueError(f"image ids are not contiguous at {image_id}")
        images.append(
            ImageEntry(
                Path(file),
                json.loads(metadata),
                class_name,
                tuple(Path(p) for p in json.loads(companions)),
            )
        )
        if is_excluded:
            excluded.append(image_id)
    nodes = _read_nodes(conn)
    return restore_session(Path(meta["source"]), images, nodes, excluded, int(meta["next_id"]))


def _read_nodes(conn: sqlite3.Connection) -> dict[int, NodeState]:
    held: dict[int, list[int]] = {}
    for image_id, node_id in conn.execute("SELECT id, node FROM images ORDER BY id"):
        held.setdefault(node_id, []).append(image_id)
    rows = conn.execute("SELECT * FROM nodes ORDER BY parent, position").fetchall()
    children: dict[int, list[int]] = {}
    for node_id, parent, *_ in rows:
        if parent is not None:
            children.setdefault(parent, []).append(node_id)
    if ROOT not in {r[0] for r in rows}:
        raise ValueError("the root cluster is missing")
    nodes = {}
    for node_id, parent, _position, name, by_user, settings in rows:
        nodes[node_id] = NodeState(
            parent,
            tuple(children.get(node_id, ())),
            name,
            tuple(held.pop(node_id, ())),
            bool(by_user),
            None if settings is None else json.loads(settings),
        )
    if held:
        raise ValueError(f"images point to missing clusters {sorted(held)[:5]}")
    return nodes
