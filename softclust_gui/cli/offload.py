"""``softclust offload CARD DEST``: copy a card to a local folder, verified, only new files.

Exit codes: 0 done; 1 finished, but some files were not copied; 2 bad usage; 3 nothing
copied and nothing already there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from softclust_gui.cli.sort import ProgressBar
from softclust_gui.session import TransferProgress, offload


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "offload",
        help="copy a camera or drone card to a local folder, keeping its layout",
        description="Copy every file of CARD under DEST with the same folders. Each copy is "
        "verified by size and SHA-256 before it takes its name; files already there with "
        "the same bytes are skipped, so offloading the same card again copies only new "
        "files. Nothing is overwritten and nothing is written to CARD.",
    )
    parser.add_argument("card", help="the card's mount point (or any folder)")
    parser.add_argument("dest", help="local folder to copy into")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    card, dest = Path(args.card), Path(args.dest)
    if not card.is_dir():
        print(f"softclust offload: error: CARD {card} is not a folder", file=sys.stderr)
        return 2
    src, out = os.path.realpath(card), os.path.realpath(dest)
    if out == src or out.startswith(src.rstrip(os.sep) + os.sep):
        print(
            f"softclust offload: error: DEST {dest} is on the card: choose a local folder",
            file=sys.stderr,
        )
        return 2
    bar = ProgressBar()
    started = time.perf_counter()

    def on_progress(progress: TransferProgress) -> None:
        detail = f"{progress.files_done}/{progress.files_total} files"
        bar.show("offload", progress.bytes_done, max(progress.bytes_total, 1), detail)

    report = offload(card, dest, progress=on_progress)
    bar.end()
    print(report.summary())
    print(f"Time: {time.perf_counter() - started:.1f} s")
    if not report.exported:
        return 3
    return 1 if report.not_exported or report.stopped else 0
