"""``softclust sort SOURCE --out DEST``: scan, features, cluster and export, headless.

Exit codes: 0 done; 1 finished, but some files were skipped or not exported; 2 bad usage;
3 nothing exported.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from softclust_gui.imaging import (
    DEFAULT_EXTRACTOR,
    EXTRACTOR_NAMES,
    FeaturePipeline,
    Progress,
    make_extractor,
    reduce_features,
    scan_source,
)
from softclust_gui.imaging.scan import IMAGE_KINDS
from softclust_gui.session import (
    AUTO,
    MAX_AUTO_CLUSTERS,
    ROOT,
    ImageEntry,
    Session,
    SessionError,
    Status,
    TransferProgress,
    export,
)

if TYPE_CHECKING:  # the engine imports torch: only when clustering starts
    from softclust_gui.engine import FitProgress

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_SKIPPED = 1
EXIT_USAGE = 2
EXIT_NOTHING = 3
DEFAULT_CLUSTERS = 8


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sort",
        help="sort the images of a folder or card into one folder per cluster",
        description="Scan SOURCE, compute (or reuse cached) features, cluster the images and "
        "copy them into one folder per cluster under DEST, verified, with a manifest. "
        "SOURCE is only ever read (except with --move). Exit codes: 0 done, 1 finished "
        "with skipped files, 2 bad usage, 3 nothing exported.",
    )
    parser.add_argument("source", help="folder or card with the images")
    parser.add_argument("--out", required=True, metavar="DEST", help="export folder")
    parser.add_argument(
        "--clusters",
        type=_cluster_count,
        default=DEFAULT_CLUSTERS,
        metavar="N",
        help=f"number of clusters, or 'auto': as many as the images support, at most "
        f"{MAX_AUTO_CLUSTERS} (default {DEFAULT_CLUSTERS})",
    )
    parser.add_argument(
        "--criterion",
        choices=("compact", "connected"),
        default="compact",
        help="compact: round groups (soft k-means); connected: groups that follow the "
        "data's shape (soft normalised cut). Default compact",
    )
    parser.add_argument(
        "--surface",
        choices=("linear", "mlp"),
        default="linear",
        help="shape of each split: a hyperplane or a curved surface (default linear)",
    )
    parser.add_argument(
        "--model",
        choices=EXTRACTOR_NAMES,
        default=DEFAULT_EXTRACTOR,
        help=f"feature extractor (default {DEFAULT_EXTRACTOR})",
    )
    parser.add_argument("--weights", metavar="FILE", help="weights file for --model")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--seed", type=int, default=0, help="random seed of the clustering")
    parser.add_argument(
        "--move", action="store_true", help="remove each source file after its verified copy"
    )
    parser.add_argument(
        "--flat", action="store_true", help="one folder per cluster, not nested as the tree"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be written, write nothing"
    )
    parser.add_argument(
        "--no-download", action="store_true", help="never try to download weights"
    )
    parser.set_defaults(handler=run)


# --- terminal progress ------------------------------------------------------------------


class ProgressBar:
    """One line on stderr, redrawn at most every 0.1 s; plain lines when not a terminal."""

    WIDTH = 28

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last = 0.0
        self.stage = ""

    def show(self, stage: str, done: float, total: float, detail: str = "") -> None:
        now = time.monotonic()
        finished = total > 0 and done >= total
        if stage == self.stage and now - self.last < 0.1 and not finished:
            return
        self.last = now
        if not self.tty:
            if stage != self.stage:
                self.stream.write(f"{stage}...\n")
                self.stream.flush()
            self.stage = stage
            return
        self.stage = stage
        share = done / total if total else 0.0
        filled = int(self.WIDTH * min(share, 1.0))
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r{stage:<9} [{bar}] {share:4.0%} {detail}".ljust(79)[:120])
        self.stream.flush()

    def end(self) -> None:
        if self.tty and self.stage:
            self.stream.write("\n")
            self.stream.flush()
        self.stage = ""


# --- the command ------------------------------------------------------------------------


def _usage_error(message: str) -> int:
    print(f"softclust sort: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _check_args(args) -> str:
    source, dest = Path(args.source), Path(args.out)
    if not source.exists():
        return f"SOURCE {source} does not exist"
    if args.clusters != AUTO and args.clusters < 2:
        return f"--clusters must be at least 2, got {args.clusters}"
    if args.weights and not Path(args.weights).is_file():
        return f"--weights {args.weights} is not a file"
    src = os.path.realpath(source)
    out = os.path.realpath(dest)
    if out == src or out.startswith(src.rstrip(os.sep) + os.sep):
        return f"DEST {dest} is inside SOURCE {source}: choose a folder outside it"
    if dest.exists() and not dest.is_dir():
        return f"DEST {dest} exists and is not a folder"
    return ""


def run(args: argparse.Namespace) -> int:
    problem = _check_args(args)
    if problem:
        return _usage_error(problem)
    started = time.perf_counter()
    bar = ProgressBar()
    timings: dict[str, float] = {}

    # Scan.
    scan = scan_source(args.source)
    bad_scans = [s for s in scan.skipped if Path(s.path).suffix.lower() in IMAGE_KINDS]
    print(f"{len(scan.images)} images in {scan.source} ({scan.layout})")
    if not scan.images:
        print("Nothing to sort: no images found.")
        _print_skipped(bad_scans)
        return EXIT_NOTHING

    # Features.
    tick = time.perf_counter()
    try:
        extractor = make_extractor(
            args.model,
            device=args.device,
            weights_file=args.weights,
            download=not args.no_download,
        )
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as exc:
        return _usage_error(f"cannot use the {args.model} model: {exc}")
    if extractor.notice:
        print(extractor.notice)

    def on_features(progress: Progress) -> None:
        detail = f"{progress.done}/{progress.total} {progress.rate:.1f} img/s"
        bar.show("features", progress.done, progress.total, detail)

    result = FeaturePipeline(extractor, on_progress=on_features).run(scan.images)
    bar.end()
    timings["features"] = time.perf_counter() - tick
    print(
        f"Features: {len(result.images)} images ({result.from_cache} from the cache, "
        f"{result.computed} computed) with {extractor.identity.describe()} on "
        f"{result.device}"
    )
    skipped = [*bad_scans, *result.skipped]
    if not len(result.images):
        print("Nothing to sort: no image could be read.")
        _print_skipped(skipped)
        return EXIT_NOTHING

    # Cluster.
    tick = time.perf_counter()
    session = _session(scan.source, result)
    _cluster(session, result.features, args, bar)
    bar.end()
    timings["clustering"] = time.perf_counter() - tick

    # Export.
    tick = time.perf_counter()

    def on_export(progress: TransferProgress) -> None:
        detail = f"{progress.files_done}/{progress.files_total} files"
        bar.show("export", progress.bytes_done, max(progress.bytes_total, 1), detail)

    items = session.export_items(flat=args.flat)
    report = export(items, args.out, move=args.move, dry_run=args.dry_run, progress=on_export)
    bar.end()
    timings["export"] = time.perf_counter() - tick
    timings["total"] = time.perf_counter() - started
    return _summary(args, session, report, skipped, timings)


def _session(source: Path, result) -> Session:
    return Session(source, [ImageEntry.from_record(record) for record in result.images])


def _cluster_count(text: str) -> int | str:
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number or 'auto', got {text!r}"
        ) from None


def _cluster(session: Session, features, args, bar: ProgressBar) -> None:
    n_images = len(session.images)
    k = args.clusters if args.clusters == AUTO else min(args.clusters, n_images)
    if n_images < 2:
        print("Only one image: it goes to DEST without clustering.")
        return
    if k != args.clusters:
        print(f"Only {n_images} images: making {k} clusters instead of {args.clusters}.")
    session.set_features(reduce_features(features))

    def on_fit(progress: FitProgress) -> None:
        bar.show("clusters", progress.done, max(progress.total, 1), progress.message[:40])

    try:
        session.recluster(
            ROOT,
            n_clusters=k,
            criterion=args.criterion,
            surface=args.surface,
            random_state=args.seed,
            callback=on_fit,
        )
    except SessionError:
        if k != AUTO:
            raise
        print("\nNo two distinct groups found: all images go to one folder.")


def _print_skipped(skipped) -> None:
    for item in skipped:
        print(f"  skipped {item.path}: {item.reason}")


def _summary(args, session: Session, report, skipped, timings: dict[str, float]) -> int:
    # Counts per cluster folder, as exported (or as planned in a dry run).
    per_folder = Counter()
    for result in report.results:
        is_image = result.item is not None and result.source == result.item.source
        if result.target is not None and is_image:
            per_folder[result.target.parent.relative_to(Path(args.out)).as_posix()] += 1
    verb = "would be written to" if args.dry_run else "exported to"
    print(f"{sum(per_folder.values())} images {verb} {args.out}:")
    for folder, count in sorted(per_folder.items()):
        print(f"  {count:6d}  {folder or '.'}")
    if args.dry_run:
        for result in report.results:
            if result.target is not None:
                print(f"  {result.source} -> {result.target}")
    print(report.summary())
    _print_skipped(skipped)
    times = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
    print(f"Time: {times}")

    if args.dry_run:
        planned = report.count(Status.PLANNED) + report.count(Status.ALREADY)
        if not planned:
            return EXIT_NOTHING
        return EXIT_SKIPPED if skipped else EXIT_OK
    if not report.exported:
        return EXIT_NOTHING
    problems = report.not_exported or report.kept_sources or report.manifest_error
    if skipped or problems or report.stopped:
        return EXIT_SKIPPED
    return EXIT_OK
