"""The list of recently opened folders, kept in the user's settings folder."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from softclust_gui import paths

logger = logging.getLogger(__name__)

MAX_RECENT = 12


def _store() -> Path:
    return paths.config_dir() / "recent.json"


def load_recent() -> list[Path]:
    """Recent folders, newest first; a damaged file is ignored with a warning."""
    store = _store()
    if not store.exists():
        return []
    try:
        entries = json.loads(store.read_text(encoding="utf-8"))
        return [Path(entry) for entry in entries if isinstance(entry, str)]
    except (OSError, ValueError) as exc:
        logger.warning("ignoring the unreadable recent-folders list %s: %s", store, exc)
        return []


def remember(folder: Path) -> list[Path]:
    """Put ``folder`` first in the list, save it atomically, and return the new list."""
    folder = Path(folder).resolve()
    entries = [folder] + [p for p in load_recent() if p != folder]
    entries = entries[:MAX_RECENT]
    store = _store()
    temp = store.with_suffix(".tmp")
    temp.write_text(json.dumps([str(p) for p in entries], indent=1), encoding="utf-8")
    os.replace(temp, store)
    return entries
