#!/usr/bin/env python3
"""Set-up and everyday commands, with nothing but Python and pip on the machine.

    python3 tasks.py run [FOLDER]   create or reuse .venv, install, open the app
    python3 tasks.py test [ARGS]    the same set-up, then lint, the bundle and all the tests
    python3 tasks.py setup          only the set-up

The virtual environment is reused: the project is installed again only when
pyproject.toml changed, so a second run starts in seconds.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("SOFTCLUST_VENV", ROOT / ".venv"))
STAMP = VENV / ".softclust-installed"


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def install_fingerprint() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_environment() -> Path:
    """Create the venv if needed and install the project when pyproject.toml changed."""
    python = venv_python()
    if not python.exists():
        print(f"Creating the virtual environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = install_fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return python
    print(
        "Installing SoftClust and its dependencies (first run: a few minutes) ...", flush=True
    )
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "--quiet", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(fingerprint)
    return python


def run_app(python: Path, args: list[str]) -> int:
    return subprocess.call([str(python), "-m", "softclust_gui", *args], cwd=ROOT)


def run_tests(python: Path, args: list[str]) -> int:
    """Lint, build the double-click bundle, then pytest (which smoke-tests the bundle).

    SOFTCLUST_SKIP_BUNDLE=1 leaves the bundle out (its build takes a few minutes); the
    bundle's tests then skip.
    """
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    steps = [
        ["-m", "ruff", "check", "."],
        ["-m", "ruff", "format", "--check", "."],
        ["packaging/build.py", "--no-smoke"],
        ["-m", "pytest", *args],
    ]
    if os.environ.get("SOFTCLUST_SKIP_BUNDLE"):
        print("SOFTCLUST_SKIP_BUNDLE is set: the bundle is not built.", flush=True)
        steps.remove(["packaging/build.py", "--no-smoke"])
    for step in steps:
        print("$ python", " ".join(step), flush=True)
        code = subprocess.call([str(python), *step], cwd=ROOT, env=env)
        if code == 5:
            print("pytest collected no tests: that counts as a failure.", file=sys.stderr)
        if code != 0:
            return code
    return 0


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("run", [])
    if command not in {"run", "test", "setup"}:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        python = ensure_environment()
    except subprocess.CalledProcessError as exc:
        print(
            f"Set-up failed: {exc}. Check the network access to PyPI and retry.",
            file=sys.stderr,
        )
        return 1
    if command == "run":
        return run_app(python, rest)
    if command == "test":
        return run_tests(python, rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
