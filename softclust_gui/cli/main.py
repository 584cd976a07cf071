"""Argument parsing and dispatch for ``softclust``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from softclust_gui import __version__, logs

logger = logging.getLogger(__name__)

# Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS: list[str] = ["scan", "features", "sort", "offload"]

EXIT_OK = 0
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softclust",
        description="Sort field images into folders by look, offline, from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"softclust {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log DEBUG to the console")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"softclust_gui.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or bad usage already explained
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    logs.configure(verbose=args.verbose)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE if argv else EXIT_OK
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
