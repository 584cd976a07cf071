"""The layer contract of ARCHITECTURE.md, checked on the source itself.

engine -> imaging -> session -> ui / cli: each layer imports only the layers before it,
only ``ui`` imports Qt, and the base modules (paths, logs, compute) import no layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "softclust_gui"
PACKAGE_ROOT = Path(__file__).resolve().parents[2] / PACKAGE
LAYER_ORDER = ["engine", "imaging", "session", "ui", "cli"]
QT_MODULES = {"PySide6", "shiboken6", "PyQt5", "PyQt6", "PySide2"}


def _layer_of(module: str) -> str | None:
    """The layer a dotted module name inside the package belongs to; None for base modules."""
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != PACKAGE:
        return None
    if parts[1] == "__main__":  # an entry point, like the command line
        return "cli"
    return parts[1] if parts[1] in LAYER_ORDER else None


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                keep = len(base) - node.level + (1 if is_package else 0)
                prefix = ".".join(base[:keep])
                name = f"{prefix}.{node.module}" if node.module else prefix
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # `from softclust_gui import imaging` imports a layer too.
            if name == PACKAGE:
                found += [(node.lineno, f"{PACKAGE}.{a.name}") for a in node.names]
    return found


def find_violations(root: Path) -> list[str]:
    """Every import in the package under ``root`` that breaks the layer contract."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        own = _layer_of(module)
        own_rank = LAYER_ORDER.index(own) if own else -1
        for line, imported in _imports(path, module):
            where = f"{path.relative_to(root.parent)}:{line} imports {imported}"
            top = imported.split(".")[0]
            if top in QT_MODULES and own != "ui":
                problems.append(f"{where}: only the ui layer may import Qt")
            target = _layer_of(imported)
            if target is None or target == own:
                continue
            if LAYER_ORDER.index(target) >= own_rank:
                problems.append(f"{where}: layer {own or 'base'} may not import layer {target}")
    return problems


def test_package_respects_layers():
    assert PACKAGE_ROOT.is_dir()
    assert find_violations(PACKAGE_ROOT) == []


def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / PACKAGE
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for layer in LAYER_ORDER[:-1]:
        (root / layer).mkdir(parents=True, exist_ok=True)
        (root / layer / "__init__.py").touch()
    return root


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("engine/_x.py", "from PySide6 import QtCore\n", "only the ui layer may import Qt"),
        ("engine/_x.py", "import softclust_gui.imaging.scan\n", "may not import layer imaging"),
        ("engine/_x.py", "from ..imaging import scan\n", "may not import layer imaging"),
        (
            "imaging/_x.py",
            "from softclust_gui import session\n",
            "may not import layer session",
        ),
        ("session/_x.py", "import shiboken6\n", "only the ui layer may import Qt"),
        ("paths.py", "from softclust_gui.engine import x\n", "layer base may not import layer"),
    ],
)
def test_checker_catches_upward_imports(tmp_path, rel, source, expected):
    root = _fake_package(tmp_path, {rel: source})
    problems = find_violations(root)
    assert len(problems) == 1
    assert expected in problems[0]


def test_checker_allows_downward_imports(tmp_path):
    root = _fake_package(
        tmp_path,
        {
            "session/_x.py": "from softclust_gui.engine import a\nfrom ..imaging import b\n",
            "ui/_y.py": "from PySide6 import QtWidgets\nfrom softclust_gui.session import c\n",
            "engine/_z.py": "from softclust_gui import paths\nfrom . import _w\n",
        },
    )
    assert find_violations(root) == []
