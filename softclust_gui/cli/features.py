"""``softclust features SOURCE``: extract and cache features, with a progress bar."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from softclust_gui.imaging import (
    DEFAULT_EXTRACTOR,
    EXTRACTOR_NAMES,
    FeaturePipeline,
    Progress,
    make_extractor,
    scan_source,
)

_BAR_WIDTH = 30


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "features",
        help="compute and cache features and thumbnails of the images in a folder or card",
        description="Scan SOURCE, then compute (or fetch from the cache) the features and "
        "thumbnails of its images. Nothing is written next to the images.",
    )
    parser.add_argument("source", help="folder, card or image file")
    parser.add_argument(
        "--extractor",
        choices=EXTRACTOR_NAMES,
        default=DEFAULT_EXTRACTOR,
        help=f"feature extractor (default {DEFAULT_EXTRACTOR})",
    )
    parser.add_argument("--weights", metavar="FILE", help="weights file to use first")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--workers", type=int, help="decoding threads (default: all cores)")
    parser.add_argument("--batch-size", type=int, help="images per inference batch")
    parser.add_argument(
        "--no-download", action="store_true", help="never try to download weights"
    )
    parser.add_argument(
        "--output",
        metavar="FILE.npz",
        help="also save the features and image paths to this .npz file",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        scan = scan_source(args.source)
    except FileNotFoundError as exc:
        print(exc)
        return 1
    print(
        f"{len(scan.images)} images in {scan.source} ({len(scan.skipped)} other files skipped)"
    )
    try:
        extractor = make_extractor(
            args.extractor,
            device=args.device,
            weights_file=args.weights,
            download=not args.no_download,
            on_download_progress=_download_bar,
        )
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"Cannot use the {args.extractor} extractor: {exc}")
        return 1
    if extractor.notice:
        print(extractor.notice)
    print(f"Extractor: {extractor.identity.describe()} on {extractor.device}")
    pipeline = FeaturePipeline(
        extractor, workers=args.workers, batch_size=args.batch_size, on_progress=_progress_bar
    )
    result = pipeline.run(scan.images)
    print(file=sys.stderr)
    rate = result.computed / result.elapsed_s if result.elapsed_s > 0 else 0.0
    print(
        f"Features: {len(result.images)} images ({result.from_cache} from the cache, "
        f"{result.computed} computed) in {result.elapsed_s:.1f} s: "
        f"{len(result.images) / max(result.elapsed_s, 1e-9):.1f} images/s overall, "
        f"{rate:.1f} images/s computed; {result.features.shape[1]} dims"
    )
    for warning in result.warnings:
        print(warning)
    for item in result.skipped:
        print(f"  skipped {item.path}: {item.reason}")
    if args.output:
        np.savez(
            args.output,
            features=result.features,
            paths=np.array([str(r.path) for r in result.images]),
            extractor=result.extractor.key(),
        )
        print(f"Saved {args.output}")
    return 0


def _progress_bar(progress: Progress) -> None:
    filled = int(_BAR_WIDTH * progress.done / max(progress.total, 1))
    bar = "#" * filled + "." * (_BAR_WIDTH - filled)
    eta = f" ETA {progress.eta_s:.0f} s" if progress.eta_s is not None else ""
    sys.stderr.write(
        f"\r{progress.stage:<8} [{bar}] {progress.done}/{progress.total} "
        f"{progress.rate:.1f} img/s{eta}   "
    )
    sys.stderr.flush()


_last_download = [0.0]


def _download_bar(done: int, total: int) -> None:
    now = time.monotonic()
    if now - _last_download[0] < 0.2 and done != total:
        return
    _last_download[0] = now
    of = f" of {total / 1e6:.0f}" if total else ""
    sys.stderr.write(f"\rdownloading weights: {done / 1e6:.0f}{of} MB   ")
    sys.stderr.flush()
