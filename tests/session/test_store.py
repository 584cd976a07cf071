"""Saving after every edit to SQLite, resuming by source, and clear errors for bad files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from softclust_gui.session.model import ROOT, ImageEntry, Session
from softclust_gui.session.store import (
    SessionFileError,
    describe_saved_session,
    find_saved_session,
    open_session,
    save_session,
    session_path_for,
)


def snapshot(session: Session):
    return {n: session.node(n) for n in session.node_ids()}, session.excluded


def make_session(source: Path, n: int = 20) -> Session:
    images = [
        ImageEntry(
            source / f"DCIM/ÉTÉ_{i:03d}.JPG",
            {"captured_at": f"2024-05-01T10:00:{i:02d}", "latitude": 45.0 + i / 100},
            "forest" if i % 2 else None,
            (source / f"DCIM/ÉTÉ_{i:03d}.DNG",) if i % 5 == 0 else (),
        )
        for i in range(n)
    ]
    return Session(source, images)


def edit_script(session: Session) -> None:
    """A fixed run of edits over a fresh session."""
    a = session.new_cluster(ROOT, "Roofs")
    b = session.new_cluster(ROOT, "Fields")
    session.move_images(range(0, 8), a)
    session.move_images(range(8, 16), b)
    c = session.new_cluster(a, "Red roofs")
    session.move_images([1, 2], c)
    session.rename(b, "Wheat fields")
    session.exclude([3, 9])
    session.merge(a, [c])
    session.include([9])


def test_every_edit_is_saved_and_resume_finds_it_by_source(tmp_path):
    source = tmp_path / "card"
    assert find_saved_session(source) is None
    session = make_session(source)
    store = save_session(session)
    assert find_saved_session(source) == store.path == session_path_for(source)
    assert store.path.parent.parent == Path(os.environ["SOFTCLUST_HOME"]) / "data"

    states = []
    session.observers.append(lambda change: states.append(snapshot(session)))
    edit_script(session)
    session.undo()
    states.append(snapshot(session))

    reopened = open_session(find_saved_session(source))
    assert snapshot(reopened) == snapshot(session)
    assert reopened.images == session.images
    assert reopened.source == source
    reopened.check_consistency()
    store.close()
    reopened.store.close()


def test_saved_state_matches_after_each_single_edit(tmp_path):
    session = make_session(tmp_path / "card")
    save_session(session)
    checks = []

    def reopen_and_compare(change):
        other = open_session(session.store.path)
        checks.append(snapshot(other) == snapshot(session))
        other.store.close()

    session.observers.append(reopen_and_compare)
    edit_script(session)
    while session.can_undo:
        session.undo()
    assert len(checks) == 20 and all(checks)


def test_resumed_session_keeps_saving_and_takes_features(tmp_path):
    session = make_session(tmp_path / "card")
    save_session(session)
    edit_script(session)
    session.store.close()
    with pytest.raises(ValueError, match=r"expected shape \(20, d\), got \(19, 4\)"):
        open_session(session_path_for(tmp_path / "card"), features=np.zeros((19, 4)))
    resumed = open_session(session_path_for(tmp_path / "card"), features=np.zeros((20, 4)))
    node = resumed.new_cluster(ROOT, "Later")
    assert node > max(session.node_ids())  # ids are never reused
    resumed.store.close()
    again = open_session(session_path_for(tmp_path / "card"))
    assert again.name(node) == "Later"
    again.store.close()


def test_saving_again_replaces_the_old_session_atomically(tmp_path):
    first = make_session(tmp_path / "card")
    save_session(first)
    edit_script(first)
    fresh = make_session(tmp_path / "card", n=5)
    save_session(fresh)
    reopened = open_session(session_path_for(tmp_path / "card"))
    assert len(reopened.images) == 5 and reopened.node_ids() == [ROOT]
    assert not [p for p in reopened.store.path.parent.iterdir() if p.name.endswith(".new")]
    for s in (first, fresh, reopened):
        s.store.close()


KILLED_EDITOR = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from tests.session.test_store import edit_script, make_session
    from softclust_gui.session.store import save_session

    session = make_session(Path(sys.argv[1]))
    save_session(session)
    limit = int(sys.argv[3])
    done = []
    def die_after(change):
        done.append(change)
        if len(done) == limit:
            os.kill(os.getpid(), signal.SIGKILL)
    session.observers.append(die_after)
    edit_script(session)
    """
)


def test_a_kill_right_after_an_edit_loses_nothing(tmp_path):
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_EDITOR,
            os.fspath(tmp_path / "card"),
            os.fspath(root),
            "6",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr

    expected = make_session(tmp_path / "card")
    limit = []

    def stop_after_six(change):
        limit.append(change)
        if len(limit) == 6:
            raise KeyboardInterrupt

    expected.observers.append(stop_after_six)
    with pytest.raises(KeyboardInterrupt):
        edit_script(expected)
    resumed = open_session(session_path_for(tmp_path / "card"))
    assert snapshot(resumed) == snapshot(expected)
    resumed.store.close()


def test_a_newer_session_file_gives_a_clear_message(tmp_path):
    session = make_session(tmp_path / "card")
    path = save_session(session).path
    session.store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=7")
    with pytest.raises(
        SessionFileError, match=r"written by a newer SoftClust \(session format 7"
    ):
        open_session(path)


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        (lambda p: p.write_bytes(b"not a database at all" * 50), "file is not a database"),
        (lambda p: p.write_bytes(p.read_bytes()[:1500]), "damaged"),
        (lambda p: p.write_bytes(b""), "not written by SoftClust"),
    ],
)
def test_a_damaged_session_file_gives_a_clear_message_and_is_kept(tmp_path, damage, detail):
    session = make_session(tmp_path / "card")
    path = save_session(session).path
    session.store.close()
    damage(path)
    kept = path.read_bytes()
    with pytest.raises(SessionFileError, match=detail) as info:
        open_session(path)
    assert "Start a new session" in str(info.value)
    assert path.read_bytes() == kept


def test_a_foreign_sqlite_file_is_not_taken_for_a_session(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(SessionFileError, match="not written by SoftClust"):
        open_session(path)
    with pytest.raises(SessionFileError, match="no saved session"):
        open_session(tmp_path / "missing.softclust-session")


def test_inconsistent_content_is_reported_not_loaded(tmp_path):
    session = make_session(tmp_path / "card")
    session.new_cluster(ROOT, "A")
    path = save_session(session).path
    session.store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE images SET node = 99 WHERE id = 3")
    with pytest.raises(SessionFileError, match="missing clusters"):
        open_session(path)


def fill_up(folder: Path) -> Path:
    """Write a file into ``folder`` until its file system is full."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_keeps_editing_says_so_and_recovers_on_the_next_save(tmp_path, tmpfs):
    folder = tmpfs(4 << 20)
    session = make_session(tmp_path / "card")
    save_session(session, folder / "s.softclust-session")
    node = session.new_cluster(ROOT, "Before")
    assert session.save_error == ""

    filler = fill_up(folder)
    session.move_images([0, 1], node)
    assert "could not save the session" in session.save_error
    assert session.images_of(node) == [0, 1]  # the edit itself stands

    filler.unlink()
    session.rename(node, "After")
    assert session.save_error == ""
    reopened = open_session(folder / "s.softclust-session")
    assert snapshot(reopened) == snapshot(session)
    reopened.store.close()
    session.store.close()


def test_a_saved_session_is_described_for_the_resume_question(tmp_path):
    session = make_session(tmp_path / "card")
    save_session(session)
    edit_script(session)
    session.store.close()
    info = describe_saved_session(find_saved_session(tmp_path / "card"))
    assert info.source == tmp_path / "card" and info.images == 20
    assert info.clusters == len(session.leaves()) == 2
    assert abs(info.saved_at - time.time()) < 60
    info.path.write_bytes(b"garbage" * 100)
    with pytest.raises(SessionFileError, match="damaged or is not a SoftClust session"):
        describe_saved_session(info.path)
