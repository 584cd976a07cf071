"""An export killed with SIGKILL halfway, then run again: finished, no duplicate, no part."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from softclust_gui.session.export import JOURNAL_NAME, MANIFEST_NAME, ExportItem, Status, export
from tests.session.conftest import sha256

KILLER = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from softclust_gui.session.export import ExportItem, export

    spec = json.loads(sys.argv[1])
    items = [ExportItem(Path(s), tuple(f)) for s, f in spec["items"]]

    def progress(state):
        # Die in the middle of a file, after a few whole ones: a real kill -9.
        if state.files_done == spec["kill_after"] and state.bytes_done > spec["min_bytes"]:
            os.kill(os.getpid(), signal.SIGKILL)

    export(items, Path(spec["dest"]), progress=progress)
    """
)


def test_export_killed_with_sigkill_resumes_without_duplicates(tmp_path, make_images):
    names = [f"{d}/DJI_{i:04d}.JPG" for d in ("100MEDIA", "101MEDIA") for i in range(1, 5)]
    paths = make_images(tmp_path / "card", names, size=(1400, 1000))
    folders = [("Roads",) if i % 2 else ("Fields", "Wheat") for i in range(len(paths))]
    items = [ExportItem(p, f) for p, f in zip(paths, folders, strict=True)]
    dest = tmp_path / "out"
    first_sizes = sum(p.stat().st_size for p in sorted(paths)[:3])
    spec = {
        "items": [[os.fspath(i.source), list(i.folder)] for i in items],
        "dest": os.fspath(dest),
        "kill_after": 3,
        "min_bytes": first_sizes + 1,
    }

    done = subprocess.run(
        [sys.executable, "-c", KILLER, json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr

    # The kill left three whole files, a partial temporary file, a journal, no manifest.
    leftovers = [p for p in dest.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".part") for p in leftovers)
    assert (dest / JOURNAL_NAME).exists() and not (dest / MANIFEST_NAME).exists()
    whole = [p for p in leftovers if p.suffix == ".JPG"]
    assert len(whole) == 3

    second = export(items, dest)

    assert second.complete
    assert second.count(Status.ALREADY) == 3 and second.count(Status.COPIED) == 5
    files = sorted(p for p in dest.rglob("*") if p.is_file())
    assert [p.name for p in files if p.suffix != ".JPG"] == [MANIFEST_NAME]
    jpegs = [p for p in files if p.suffix == ".JPG"]
    assert len(jpegs) == 8
    assert sorted(sha256(p) for p in jpegs) == sorted(sha256(p) for p in paths)
    manifest = (dest / MANIFEST_NAME).read_bytes()
    assert manifest.count(b"\r\n") == 9

    stamps = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in jpegs}
    third = export(items, dest)
    assert third.count(Status.ALREADY) == 8
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in jpegs} == stamps
    assert (dest / MANIFEST_NAME).read_bytes() == manifest
