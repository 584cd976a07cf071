"""Where the app keeps its files: the one place that knows about frozen builds.

Every folder the app writes to or reads its own data from is resolved here:

- ``cache_dir()``: features, thumbnails and metadata (safe to delete);
- ``config_dir()``: settings and the list of recent folders;
- ``data_dir()``: saved sessions;
- ``log_dir()``: the rotating log file;
- ``resources_dir()``: files shipped with the app (icons, sample flight, weights).

The environment variable ``SOFTCLUST_HOME`` moves all the user folders under one root,
which is how tests and portable installs keep the real user folders untouched.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

from softclust_gui import APP_NAME

HOME_ENV = "SOFTCLUST_HOME"
_APP_AUTHOR = False  # no vendor folder on Windows: %LOCALAPPDATA%\SoftClust


def is_frozen() -> bool:
    """True when running from a PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def _home_override() -> Path | None:
    root = os.environ.get(HOME_ENV)
    return Path(root).expanduser() if root else None


def _user_dir(kind: str) -> Path:
    override = _home_override()
    if override is not None:
        path = override / kind
    else:
        getter = {
            "cache": platformdirs.user_cache_path,
            "config": platformdirs.user_config_path,
            "data": platformdirs.user_data_path,
            "log": platformdirs.user_log_path,
        }[kind]
        path = getter(APP_NAME, _APP_AUTHOR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    return _user_dir("cache")


def config_dir() -> Path:
    return _user_dir("config")


def data_dir() -> Path:
    return _user_dir("data")


def log_dir() -> Path:
    return _user_dir("log")


def log_file() -> Path:
    return log_dir() / "softclust.log"


def resources_dir() -> Path:
    """The shipped ``resources/`` folder, inside the bundle when frozen."""
    if is_frozen():
        return Path(sys._MEIPASS) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource(*parts: str) -> Path:
    """Path of one shipped resource file; it may not exist (e.g. no bundled weights)."""
    return resources_dir().joinpath(*parts)
