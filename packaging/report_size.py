#!/usr/bin/env python3
"""How big the built bundle is, and what it is made of.

    python packaging/report_size.py [BUNDLE] [--top N]

BUNDLE defaults to ``packaging/dist/SoftClust`` (or ``SoftClust.app`` on macOS). Prints a
table of the bundle's size split by component (torch, the NVIDIA CUDA libraries, Qt,
OpenCV, the scientific stack, weights, the rest), and with ``--top`` its N largest files.
Symbolic links are not counted: they take no space.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

DIST = Path(__file__).resolve().parent / "dist"
MIB = 1 << 20

# (component, first folder under the bundle's library folder); the first match wins.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("torch", ("torch", "torchvision", "torchvision.libs", "functorch", "torchgen")),
    ("nvidia (CUDA)", ("nvidia", "cuda", "cuda_bindings", "cuda_pathfinder")),
    ("Qt (PySide6)", ("PySide6", "shiboken6")),
    ("OpenCV", ("cv2", "opencv_python_headless.libs")),
    ("numpy, scipy, scikit-learn", ("numpy", "numpy.libs", "scipy", "scipy.libs", "sklearn")),
    ("weights", ("resources/weights",)),
)
OTHER = "the rest (Python, Pillow, app, ...)"
_LIBRARY_DIRS = ("_internal", "Contents/Frameworks", "Contents/Resources")


@dataclass
class Component:
    name: str
    size: int = 0
    files: int = 0
    largest: list[tuple[int, str]] = field(default_factory=list)


def default_bundle(dist: Path = DIST) -> Path:
    app = dist / "SoftClust.app"
    return app if app.is_dir() else dist / "SoftClust"


def _files(bundle: Path) -> Iterator[tuple[str, int]]:
    """(bundle-relative POSIX path, bytes) of every regular file, symbolic links skipped."""
    for folder, dirs, files in os.walk(bundle):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            yield Path(path).relative_to(bundle).as_posix(), os.stat(path).st_size


def component_of(rel: str) -> str:
    """The component a bundle-relative path belongs to."""
    parts = PurePosixPath(rel).parts
    for prefix in _LIBRARY_DIRS:
        head = PurePosixPath(prefix).parts
        if parts[: len(head)] == head:
            parts = parts[len(head) :]
            break
    inner = "/".join(parts)
    for name, roots in COMPONENTS:
        if any(inner == r or inner.startswith(r + "/") for r in roots):
            return name
    return OTHER


def measure(bundle: Path) -> list[Component]:
    """Size and file count per component, largest component first."""
    if not bundle.is_dir():
        raise FileNotFoundError(
            f"No bundle at {bundle}; build one with `python packaging/build.py`."
        )
    by_name = {name: Component(name) for name, _ in COMPONENTS}
    by_name[OTHER] = Component(OTHER)
    for rel, size in _files(bundle):
        part = by_name[component_of(rel)]
        part.size += size
        part.files += 1
        part.largest.append((size, rel))
    return sorted(by_name.values(), key=lambda c: -c.size)


def format_table(parts: list[Component], top: int = 0) -> str:
    total = sum(p.size for p in parts) or 1
    rows = [f"{'component':<36} {'MiB':>9} {'share':>6} {'files':>6}"]
    for p in parts:
        rows.append(
            f"{p.name:<36} {p.size / MIB:9.1f} {100 * p.size / total:5.1f}% {p.files:6d}"
        )
    rows.append(
        f"{'total':<36} {total / MIB:9.1f} {100.0:5.1f}% {sum(p.files for p in parts):6d}"
    )
    if top:
        rows.append("")
        rows.append(f"largest {top} files:")
        largest = sorted((f for p in parts for f in p.largest), reverse=True)[:top]
        rows.extend(f"{size / MIB:9.1f} MiB  {rel}" for size, rel in largest)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the size of the SoftClust bundle.")
    parser.add_argument("bundle", nargs="?", type=Path, default=None)
    parser.add_argument("--top", type=int, default=0, metavar="N", help="list the N largest")
    args = parser.parse_args(argv)
    bundle = args.bundle or default_bundle()
    try:
        parts = measure(bundle)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{bundle}:")
    print(format_table(parts, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
