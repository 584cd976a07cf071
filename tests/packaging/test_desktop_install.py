"""The Linux desktop install step, run into a temporary XDG_DATA_HOME."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import install_linux_desktop as ild
import pytest

RESOURCES = ild.HERE.parent / "resources"


@pytest.fixture
def data_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "xdg data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def _program(folder: Path, name: str = "SoftClust") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / name
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    return program


def _entry(home: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(home / "applications" / ild.DESKTOP_NAME, encoding="utf-8")
    return parser["Desktop Entry"]


def test_install_writes_the_menu_entry_and_icons_for_the_given_program(data_home, tmp_path):
    program = _program(tmp_path / "Field Apps" / "SoftClust")
    assert ild.main(["--exec", str(program)]) == 0
    entry = _entry(data_home)
    assert entry["Exec"] == f'"{program}" %f'  # quoted: the path has a space
    assert entry["TryExec"] == str(program)
    assert entry["Icon"] == "softclust"
    assert entry["Name"] == "SoftClust"
    assert entry["Type"] == "Application"
    assert entry[ild.MARKER] == "install_linux_desktop.py"
    for installed, source in ild.ICON_FILES:
        copy = data_home / "icons" / "hicolor" / installed
        assert copy.read_bytes() == (RESOURCES / "icons" / source).read_bytes()


def test_install_again_replaces_its_own_entry(data_home, tmp_path):
    first = _program(tmp_path / "old")
    second = _program(tmp_path / "new")
    assert ild.main(["--exec", str(first)]) == 0
    assert ild.main(["--exec", str(second)]) == 0
    assert _entry(data_home)["TryExec"] == str(second)
    assert not list((data_home / "applications").glob("*.tmp"))


def test_install_leaves_a_foreign_entry_alone_unless_forced(data_home, tmp_path, capsys):
    program = _program(tmp_path / "bin")
    foreign = data_home / "applications" / ild.DESKTOP_NAME
    foreign.parent.mkdir(parents=True)
    foreign.write_text("[Desktop Entry]\nName=Mine\n")
    assert ild.main(["--exec", str(program)]) == 1
    assert "was not written by this installer; move it away or pass --force" in (
        capsys.readouterr().err
    )
    assert foreign.read_text() == "[Desktop Entry]\nName=Mine\n"
    assert ild.main(["--uninstall"]) == 1
    assert foreign.exists()
    assert ild.main(["--exec", str(program), "--force"]) == 0
    assert _entry(data_home)["TryExec"] == str(program)


def test_uninstall_removes_every_file_it_installed(data_home, tmp_path, capsys):
    assert ild.main(["--exec", str(_program(tmp_path / "bin"))]) == 0
    assert ild.main(["--uninstall"]) == 0
    remaining = [p for p in data_home.rglob("*") if p.is_file() and "softclust" in p.name]
    assert remaining == []
    assert ild.main(["--uninstall"]) == 0
    assert "Nothing to remove." in capsys.readouterr().out


def test_install_refuses_a_program_that_cannot_run(data_home, tmp_path, capsys):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    assert ild.main(["--exec", str(text_file)]) == 1
    assert "notes.txt is not an executable file; check --exec" in capsys.readouterr().err
    assert not (data_home / "applications").exists()


@pytest.mark.parametrize(
    ("path", "written"),
    [
        ("/opt/SoftClust/SoftClust", "/opt/SoftClust/SoftClust"),
        ("/home/a b/SoftClust", '"/home/a b/SoftClust"'),
        ('/x/$HOME"q`', r'"/x/\\$HOME\\"q\\`"'),
        ("/x/back\\slash", r'"/x/back\\\\slash"'),
        ("/x/100%/SoftClust", "/x/100%%/SoftClust"),
    ],
)
def test_exec_arguments_are_quoted_as_the_desktop_entry_spec_says(path, written):
    assert ild.quote_exec_arg(path) == written


def test_data_home_follows_xdg_and_ignores_a_relative_value(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert ild.data_home() == tmp_path / "share"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/share")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ild.data_home() == tmp_path / "home" / ".local" / "share"


def test_from_a_bundle_folder_it_finds_the_bundled_resources_and_program(tmp_path):
    bundle = tmp_path / "SoftClust"
    shutil.copytree(RESOURCES / "icons", bundle / "_internal" / "resources" / "icons")
    shutil.copy(RESOURCES / ild.DESKTOP_NAME, bundle / "_internal" / "resources")
    program = _program(bundle)
    assert ild.find_resources(bundle) == bundle / "_internal" / "resources"
    assert ild.default_program(bundle) == program
    with pytest.raises(ild.InstallError, match=r"No softclust\.desktop found near"):
        ild.find_resources(tmp_path / "elsewhere")


def test_the_script_runs_with_the_standard_library_only(data_home, tmp_path):
    program = _program(tmp_path / "bin")
    script = ild.HERE / "install_linux_desktop.py"
    env = dict(os.environ, XDG_DATA_HOME=str(data_home))
    # -S: no site-packages, -I: no user site and no current folder on the path.
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(script), "--exec", str(program)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "is in the application menu" in result.stdout
    assert _entry(data_home)["TryExec"] == str(program)


@pytest.mark.skipif(
    shutil.which("desktop-file-validate") is None, reason="no desktop-file-utils"
)
def test_the_installed_entry_passes_desktop_file_validate(data_home, tmp_path):
    assert ild.main(["--exec", str(_program(tmp_path / "a b"))]) == 0
    result = subprocess.run(
        ["desktop-file-validate", str(data_home / "applications" / ild.DESKTOP_NAME)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
