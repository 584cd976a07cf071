#!/usr/bin/env python3
"""Put SoftClust in the Linux desktop's application menu, or take it out again.

    python3 install_linux_desktop.py [--exec PROGRAM]     # install for this user
    python3 install_linux_desktop.py --uninstall

Run from the bundle folder (``SoftClust/install_linux_desktop.py``), it installs the
``SoftClust`` executable beside it; run from a source checkout, it installs
``softclust-gui`` from PATH. ``--exec`` names another program. Files go under
``$XDG_DATA_HOME`` (default ``~/.local/share``), nothing outside the user's home:

- ``applications/softclust.desktop`` (the menu entry, which also offers "Open With" for
  folders);
- ``icons/hicolor/{256x256,512x512}/apps/softclust.png`` and
  ``icons/hicolor/scalable/apps/softclust.svg``.

Only the standard library is used, so the system's ``python3`` can run it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

DESKTOP_NAME = "softclust.desktop"
ICON_NAME = "softclust"
MARKER = "X-SoftClust-Installer"  # key in the installed entry: what uninstall may remove
# (installed name under icons/hicolor, file in resources/icons)
ICON_FILES = (
    ("256x256/apps/softclust.png", "softclust.png"),
    ("512x512/apps/softclust.png", "softclust-512.png"),
    ("scalable/apps/softclust.svg", "softclust.svg"),
)
HERE = Path(__file__).resolve().parent


class InstallError(Exception):
    """Something the user must fix; the message says what."""


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or not absolute."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if value and Path(value).is_absolute() else Path.home() / ".local/share"


def find_resources(here: Path = HERE) -> Path:
    """The resources folder: in the bundle (``_internal/resources``) or the checkout."""
    for candidate in (
        here / "_internal" / "resources",
        here / "resources",
        here.parent / "resources",
    ):
        if (candidate / DESKTOP_NAME).is_file():
            return candidate
    raise InstallError(
        f"No {DESKTOP_NAME} found near {here}: run this script from the SoftClust folder "
        "or from a source checkout."
    )


def default_program(here: Path = HERE) -> Path:
    """The program the menu entry starts when ``--exec`` is not given."""
    bundled = here / "SoftClust"
    if bundled.is_file():
        return bundled
    found = shutil.which("softclust-gui")
    if found:
        return Path(found)
    raise InstallError(
        f"No SoftClust program beside {here} and no softclust-gui on PATH; "
        "name the program with --exec."
    )


def quote_exec_arg(text: str) -> str:
    """Quote one argument of a desktop entry's Exec key (Desktop Entry Specification 1.4).

    Inside double quotes, ``"`` `` ` `` ``$`` and ``\\`` take a backslash, a literal ``%``
    is doubled, and then, as in every string value of the file, each backslash is written
    twice.
    """
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    if text and not (set(text) & reserved):
        quoted = text
    else:
        escaped = "".join("\\" + c if c in '"`$\\' else c for c in text)
        quoted = f'"{escaped}"'
    # Field codes start with %, so a literal % is doubled.
    return quoted.replace("%", "%%").replace("\\", "\\\\")


def desktop_entry(template: str, program: Path) -> str:
    """The template with Exec and TryExec pointing at ``program`` and the installer's mark."""
    lines = []
    for line in template.splitlines():
        key = line.split("=", 1)[0].strip()
        if key == "Exec":
            line = f"Exec={quote_exec_arg(str(program))} %f"
        elif key == "TryExec":
            line = f"TryExec={str(program).replace(chr(92), chr(92) * 2)}"
        lines.append(line)
    lines.append(f"{MARKER}=install_linux_desktop.py")
    return "\n".join(lines) + "\n"


def _is_ours(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.startswith(f"{MARKER}=") for line in text.splitlines())


def _refresh_caches(home: Path) -> None:
    """Let the desktop see the change now; harmless where these tools are missing."""
    commands = (
        ["update-desktop-database", "-q", str(home / "applications")],
        ["gtk-update-icon-cache", "-q", "-t", "-f", str(home / "icons" / "hicolor")],
    )
    for command in commands:
        if shutil.which(command[0]):
            subprocess.run(command, check=False, capture_output=True)


def install(program: Path, home: Path, resources: Path, force: bool = False) -> list[Path]:
    """Write the menu entry and icons under ``home``; return the files written."""
    program = program.expanduser().resolve()
    if not program.is_file() or not os.access(program, os.X_OK):
        raise InstallError(f"{program} is not an executable file; check --exec.")
    entry_path = home / "applications" / DESKTOP_NAME
    if entry_path.exists() and not force and not _is_ours(entry_path):
        raise InstallError(
            f"{entry_path} exists and was not written by this installer; "
            "move it away or pass --force to replace it."
        )
    template = (resources / DESKTOP_NAME).read_text(encoding="utf-8")
    written = []
    for installed, source in ICON_FILES:
        target = home / "icons" / "hicolor" / installed
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(resources / "icons" / source, target)
        written.append(target)
    entry_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry_path.with_suffix(".tmp")
    tmp.write_text(desktop_entry(template, program), encoding="utf-8")
    tmp.chmod(0o755)  # some desktops only start entries marked executable
    os.replace(tmp, entry_path)
    written.append(entry_path)
    _refresh_caches(home)
    return written


def uninstall(home: Path) -> list[Path]:
    """Remove what ``install`` wrote under ``home``; return the files removed."""
    entry_path = home / "applications" / DESKTOP_NAME
    if entry_path.exists() and not _is_ours(entry_path):
        raise InstallError(
            f"{entry_path} was not written by this installer; it is left in place."
        )
    removed = []
    for path in [entry_path, *(home / "icons" / "hicolor" / i for i, _ in ICON_FILES)]:
        if path.exists():
            path.unlink()
            removed.append(path)
    _refresh_caches(home)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Add SoftClust to the application menu.")
    parser.add_argument("--exec", dest="program", type=Path, help="the program to start")
    parser.add_argument("--uninstall", action="store_true", help="remove the menu entry")
    parser.add_argument("--force", action="store_true", help="replace a foreign entry")
    args = parser.parse_args(argv)
    home = data_home()
    try:
        if args.uninstall:
            files = uninstall(home)
            print("Removed:" if files else "Nothing to remove.", *files, sep="\n  ")
        else:
            program = args.program or default_program()
            files = install(program, home, find_resources(), force=args.force)
            print(f"SoftClust ({program}) is in the application menu:", *files, sep="\n  ")
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
