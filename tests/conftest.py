"""Shared fixtures: every test runs with its own user folders and offscreen Qt."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Cache, settings, logs and sessions go to a fresh folder, never the real ones."""
    home = tmp_path_factory.mktemp("softclust-home")
    monkeypatch.setenv("SOFTCLUST_HOME", str(home))
    return home
