#!/usr/bin/env python3
"""Smoke test of a built SoftClust bundle: the frozen programs start and do their job.

    python packaging/smoke_test.py [BUNDLE] [--cold] [--no-torch]

Checks, each with its own user folders (``SOFTCLUST_HOME`` in a temporary folder):

1. ``softclust-cli --version`` prints the app's version;
2. ``softclust-cli sort SAMPLE --out DEST`` with the bundle's default extractor writes
   every sample image, byte for byte, into cluster folders with a manifest. SAMPLE is the
   bundled ``resources/sample-flight``, or photo-like JPEGs written here when the bundle
   has none;
3. the same with ``--weights``: a MobileNetV3 state_dict (random weights, written here by
   torchvision) so that the frozen torch really runs the network; skipped with
   ``--no-torch`` or when this Python has no torchvision;
4. the GUI starts offscreen, logs "window shown" (the time to it is the start time), stays
   up, and quits with exit code 0 on SIGTERM. ``--cold`` first evicts the bundle's files
   from the page cache (Linux), so the start reads them from disk.

Exit code 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import softclust_bundle as sb
from report_size import default_bundle

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dng", ".heic"}
MANIFEST_NAME = "softclust-manifest.csv"  # softclust_gui.session.export.MANIFEST_NAME
WINDOW_SHOWN = "window shown"
EXE_SUFFIX = ".exe" if os.name == "nt" else ""


@dataclass
class Check:
    name: str
    ok: bool
    seconds: float
    detail: str


def executables(bundle: Path) -> tuple[Path, Path]:
    """The GUI and CLI executables of a bundle folder (or of a macOS ``.app``)."""
    folder = bundle / "Contents" / "MacOS" if bundle.suffix == ".app" else bundle
    gui = folder / f"{sb.GUI_NAME}{EXE_SUFFIX}"
    cli = folder / f"{sb.CLI_NAME}{EXE_SUFFIX}"
    missing = [str(p) for p in (gui, cli) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"Not a built SoftClust bundle: {', '.join(missing)} missing.")
    return gui, cli


def bundled_resources(bundle: Path) -> Path:
    if bundle.suffix == ".app":
        return bundle / "Contents" / "Resources" / "resources"
    return bundle / "_internal" / "resources"


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, SOFTCLUST_HOME=str(home), QT_QPA_PLATFORM="offscreen")


def _run(
    command: list, home: Path, timeout: float
) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    result = subprocess.run(
        [str(c) for c in command],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result, time.perf_counter() - start


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def check_version(cli: Path, home: Path) -> Check:
    result, seconds = _run([cli, "--version"], home, timeout=300)
    expected = f"softclust {sb.app_version()}"
    ok = result.returncode == 0 and result.stdout.strip() == expected
    detail = result.stdout.strip() if ok else f"expected {expected!r}: {result!r}"
    return Check("softclust-cli --version", ok, seconds, detail)


def write_sample_photos(folder: Path, count: int = 16) -> Path:
    """Photo-like JPEGs of two kinds (green fields, grey roofs) in a DCIM-style folder."""
    import numpy as np
    from PIL import Image

    target = folder / "DCIM" / "100MEDIA"
    target.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    for i in range(count):
        base = np.array([70, 140, 60] if i % 2 == 0 else [150, 150, 160], np.float32)
        stripes = 40 * np.sin((x if i % 2 else y) / rng.uniform(6, 14) + rng.uniform(0, 6))
        img = base + stripes[..., None] + rng.normal(0, 10, (480, 640, 3))
        pixels = np.clip(img, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(target / f"DJI_{i + 1:04d}.JPG", quality=90)
    return folder


def sample_source(bundle: Path, scratch: Path) -> tuple[Path, str]:
    """The bundled sample flight, or photos written to ``scratch`` when there is none."""
    bundled = bundled_resources(bundle) / "sample-flight"
    if bundled.is_dir() and any(_images(bundled)):
        return bundled, f"bundled sample flight ({len(list(_images(bundled)))} images)"
    return write_sample_photos(
        scratch / "photos"
    ), "no bundled sample flight: 16 photos made here"


def _images(folder: Path):
    return (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_problems(source: Path, out: Path) -> list[str]:
    """What is wrong with ``out`` as a sorted copy of every image under ``source``.

    Every source image must be in ``out`` exactly once with the same bytes, in cluster
    folders (more than one when there is more than one image), next to a manifest.
    """
    wanted = Counter(_sha256(p) for p in _images(source))
    copies = [p for p in _images(out)]
    got = Counter(_sha256(p) for p in copies)
    problems = []
    if wanted != got:
        missing = sum((wanted - got).values())
        extra = sum((got - wanted).values())
        problems.append(f"{missing} source images missing or changed, {extra} unexpected files")
    folders = {p.parent for p in copies}
    if sum(wanted.values()) > 1 and len(folders) < 2:
        problems.append(f"all {len(copies)} images in one folder: nothing was sorted")
    if not (out / MANIFEST_NAME).is_file():
        problems.append(f"no {MANIFEST_NAME} in {out}")
    return problems


def check_sort(
    cli: Path, source: Path, out: Path, home: Path, label: str, extra: list | None = None
) -> Check:
    command = [cli, "sort", source, "--out", out, "--clusters", "4", *(extra or [])]
    result, seconds = _run(command, home, timeout=900)
    name = f"softclust-cli sort ({label})"
    if result.returncode != 0:
        output = _tail(result.stdout + result.stderr)
        return Check(name, False, seconds, f"exit code {result.returncode}:\n{output}")
    problems = export_problems(source, out)
    folders = sorted({p.parent.name for p in _images(out)})
    detail = "; ".join(problems) or f"{len(folders)} folders: {', '.join(folders)}"
    return Check(name, not problems, seconds, detail)


def write_random_weights(path: Path) -> Path:
    """A torchvision MobileNetV3-Large state_dict with random (seeded) weights."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_large(weights=None)
    torch.save(model.state_dict(), path)
    return path


def evict_page_cache(bundle: Path) -> int:
    """Drop the bundle's files from the page cache (Linux); returns the files evicted."""
    if not hasattr(os, "posix_fadvise"):
        return 0
    count = 0
    for path in bundle.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(fd)
    return count


def _wait_for_log(log: Path, text: str, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and text in log.read_text(encoding="utf-8", errors="replace"):
            return True
        time.sleep(0.05)
    return False


def check_gui(gui: Path, home: Path, label: str, stay_up: float = 3.0) -> Check:
    """Start the GUI offscreen, time it to "window shown", then quit it with SIGTERM."""
    name = f"SoftClust GUI ({label})"
    log = home / "log" / "softclust.log"
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(gui)], env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        shown = _wait_for_log(log, WINDOW_SHOWN, proc, timeout=300)
        seconds = time.perf_counter() - start
        if not shown:
            return Check(name, False, seconds, f"no {WINDOW_SHOWN!r} in {log}")
        time.sleep(stay_up)
        if proc.poll() is not None:
            return Check(name, False, seconds, f"exited by itself with code {proc.returncode}")
        # Windows has no SIGTERM: terminate() ends the process there, so only POSIX
        # systems check the clean exit.
        proc.send_signal(signal.SIGTERM) if os.name != "nt" else proc.terminate()
        code = proc.wait(timeout=60) if os.name != "nt" else 0
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate()[0] or ""
    text = log.read_text(encoding="utf-8", errors="replace")
    problems = []
    if code != 0:
        problems.append(f"exit code {code} after SIGTERM:\n{_tail(output)}")
    if "frozen=True" not in text:
        problems.append("the log does not say frozen=True")
    detail = "; ".join(problems) or f"window shown after {seconds:.2f} s, quit on SIGTERM"
    return Check(name, not problems, seconds, detail)


def run_checks(bundle: Path, cold: bool = False, torch_run: bool = True) -> list[Check]:
    gui, cli = executables(bundle)
    checks = []
    with tempfile.TemporaryDirectory(prefix="softclust-smoke-") as tmp_name:
        tmp = Path(tmp_name)
        if cold:
            evict_page_cache(bundle)
        checks.append(
            check_gui(gui, tmp / "home-gui-1", "first start" + (", cold" if cold else ""))
        )
        checks.append(check_gui(gui, tmp / "home-gui-2", "second start"))
        checks.append(check_version(cli, tmp / "home-version"))
        source, label = sample_source(bundle, tmp)
        print(f"sorting: {label}", flush=True)
        checks.append(check_sort(cli, source, tmp / "out-default", tmp / "home-1", "default"))
        if torch_run and _has_torchvision():
            weights = write_random_weights(tmp / "mobilenet_v3_large-random.pth")
            extra = ["--model", "mobilenet_v3_large", "--weights", weights]
            checks.append(
                check_sort(cli, source, tmp / "out-cnn", tmp / "home-2", "CNN", extra)
            )
    return checks


def _has_torchvision() -> bool:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return False
    return True


def format_checks(checks: list[Check]) -> str:
    rows = [f"{'check':<40} {'result':<6} {'seconds':>8}  detail"]
    for c in checks:
        first, *rest = c.detail.splitlines() or [""]
        rows.append(f"{c.name:<40} {'ok' if c.ok else 'FAIL':<6} {c.seconds:8.2f}  {first}")
        rows.extend(f"{'':<58}{line}" for line in rest)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Smoke test of a built SoftClust bundle.")
    parser.add_argument("bundle", nargs="?", type=Path, default=None)
    parser.add_argument("--cold", action="store_true", help="evict the bundle from the cache")
    parser.add_argument("--no-torch", action="store_true", help="skip the CNN sort")
    args = parser.parse_args(argv)
    bundle = args.bundle or default_bundle()
    try:
        checks = run_checks(bundle, cold=args.cold, torch_run=not args.no_torch)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_checks(checks))
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
