#!/usr/bin/env python3
"""Build the SoftClust bundle, then smoke-test it and print its size.

    python packaging/build.py [--weights [NAME=]FILE ...] [--clean] [--no-smoke]

Run it with the Python of the environment to freeze (the project installed with the
``packaging`` extra: ``pip install -e .[packaging]``). Output: ``packaging/dist/SoftClust/``
(``SoftClust.app`` on macOS) with the ``SoftClust`` app and the ``softclust-cli`` command
line; PyInstaller's work files go to ``packaging/build/`` and are reused by the next build.

Weights: each ``--weights`` file is bundled as ``resources/weights/<torchvision name>``
(NAME is ``mobilenet_v3_large`` or ``resnet50``; it can be left out when the file has
torchvision's name). Without ``--weights`` the default network's file is taken from torch's
hub cache; when it is not there either, the build says so and goes on, and the app uses its
weights-free descriptor. Every weights file is loaded once before the build, so a wrong
file stops the build at once rather than the app later.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import report_size  # noqa: E402
import smoke_test  # noqa: E402
import softclust_bundle as sb  # noqa: E402

SPEC = HERE / "softclust.spec"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build the SoftClust bundle with PyInstaller.")
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="[NAME=]FILE",
        help="a weights file to bundle (repeatable); default: torch's hub cache",
    )
    parser.add_argument("--dist", type=Path, default=HERE / "dist", help="output folder")
    parser.add_argument("--work", type=Path, default=HERE / "build", help="work folder")
    parser.add_argument("--clean", action="store_true", help="start from an empty work folder")
    parser.add_argument("--no-smoke", action="store_true", help="do not run the smoke test")
    parser.add_argument("--cold", action="store_true", help="smoke test: cold GUI start")
    return parser.parse_args(argv)


def check_weights(choices: list[sb.WeightsChoice]) -> None:
    """Load each weights file into its network; a bad file raises before the long build."""
    from softclust_gui.imaging.extractors import load_backbone

    for choice in choices:
        load_backbone(choice.backbone, choice.source)
        note = ""
        if choice.source.name == choice.file_name and not sb.sha256_prefix_matches(
            choice.source
        ):
            note = " (not torchvision's file: its SHA-256 does not match its name)"
        print(f"weights: {choice.backbone} from {choice.source} ({choice.origin}){note}")


def resolve_weights(given: list[str]) -> list[sb.WeightsChoice]:
    import torch.hub

    choices, notes = sb.choose_weights(given, Path(torch.hub.get_dir()) / "checkpoints")
    for note in notes:
        print(f"NOTE: {note}")
    check_weights(choices)
    return choices


def run_pyinstaller(args: argparse.Namespace, choices: list[sb.WeightsChoice]) -> float:
    env = dict(os.environ)
    env[sb.WEIGHTS_ENV] = os.pathsep.join(f"{c.backbone}={c.source}" for c in choices)
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(args.dist),
        "--workpath",
        str(args.work),
        *(["--clean"] if args.clean else []),
        str(SPEC),
    ]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    return time.perf_counter() - start


def finish_bundle(bundle: Path, seconds: float, choices: list[sb.WeightsChoice]) -> None:
    """Add the files that go beside the executables, then mark the bundle complete."""
    if sys.platform.startswith("linux"):
        target = bundle / "install_linux_desktop.py"
        shutil.copyfile(HERE / "install_linux_desktop.py", target)
        target.chmod(0o755)
    info = {
        "version": sb.app_version(),
        "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(seconds, 1),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "weights": {c.backbone: c.origin for c in choices},
    }
    sb.build_stamp(bundle).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # keep our lines in order with PyInstaller's
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        print(
            "error: PyInstaller is not installed in this environment; "
            "install it with `pip install -e .[packaging]`.",
            file=sys.stderr,
        )
        return 1
    try:
        choices = resolve_weights(args.weights)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bundle = report_size.default_bundle(args.dist)
    sb.build_stamp(bundle).unlink(missing_ok=True)  # the bundle is incomplete until the end
    try:
        seconds = run_pyinstaller(args, choices)
    except subprocess.CalledProcessError as exc:
        print(f"error: PyInstaller failed with exit code {exc.returncode}.", file=sys.stderr)
        return 1
    bundle = report_size.default_bundle(args.dist)
    finish_bundle(bundle, seconds, choices)
    print(f"built {bundle} in {seconds / 60:.1f} min")
    report_size.main([str(bundle)])
    if args.no_smoke:
        return 0
    smoke = ["--cold"] if args.cold else []
    return smoke_test.main([str(bundle), *smoke])


if __name__ == "__main__":
    sys.exit(main())
