"""``softclust scan [SOURCE]``: list the images and skipped files of a folder or card."""

from __future__ import annotations

import argparse
from collections import Counter

from softclust_gui.imaging import find_card_volumes, scan_source

_SHOWN_PER_REASON = 3


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="list the images in a folder or on a card, and what is skipped",
        description="List the images in SOURCE (a folder or a card) and every file skipped, "
        "with the reason. Without SOURCE, list the cards (volumes with DCIM/) plugged in.",
    )
    parser.add_argument("source", nargs="?", help="folder, card or image file")
    parser.add_argument(
        "--metadata",
        action="store_true",
        help="also read capture time, GPS and camera from each header",
    )
    parser.add_argument("--all", action="store_true", help="list every image and skipped file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.source is None:
        return _list_cards()
    try:
        result = scan_source(args.source, metadata=args.metadata)
    except FileNotFoundError as exc:
        print(exc)
        return 1
    kinds = Counter(record.kind for record in result.images)
    with_companions = sum(1 for record in result.images if record.companions)
    print(f"{result.source} ({result.layout}; walked {result.root})")
    summary = ", ".join(f"{n} {kind.upper()}" for kind, n in kinds.most_common()) or "none"
    print(f"Images: {len(result.images)} ({summary}); {with_companions} with companion files")
    if args.all or args.metadata:
        for record in result.images:
            print(f"  {_describe(record, args.metadata)}")
    _print_skipped(result.skipped, args.all)
    return 0


def _describe(record, with_metadata: bool) -> str:
    text = f"{record.path}  {record.size / 1e6:.1f} MB"
    if record.companions:
        text += "  + " + ", ".join(p.name for p in record.companions)
    meta = record.metadata
    if with_metadata and meta is not None:
        parts = [f"{meta.width}x{meta.height}"]
        if meta.captured_at:
            parts.append(meta.captured_at)
        if meta.camera_model:
            parts.append(meta.camera_model)
        if meta.latitude is not None:
            parts.append(f"GPS {meta.latitude:.6f},{meta.longitude:.6f}")
        if meta.relative_altitude is not None:
            parts.append(f"{meta.relative_altitude:.1f} m above take-off")
        text += "  [" + "; ".join(parts) + "]"
    return text


def _print_skipped(skipped, show_all: bool) -> None:
    print(f"Skipped: {len(skipped)}")
    by_reason: dict[str, list] = {}
    for item in skipped:
        by_reason.setdefault(item.reason, []).append(item.path)
    for reason, found in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(found)} x {reason}")
        shown = found if show_all else found[:_SHOWN_PER_REASON]
        for path in shown:
            print(f"      {path}")
        if len(found) > len(shown):
            print(f"      ... and {len(found) - len(shown)} more (--all lists them)")


def _list_cards() -> int:
    cards = find_card_volumes()
    if not cards:
        print("No card found (no mounted volume with a DCIM folder). Give a folder to scan.")
        return 1
    for card in cards:
        print(f"{card.label}: {card.root} (DCIM at {card.dcim})")
    return 0
