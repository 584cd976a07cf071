"""The headless command line: ``softclust``.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` to a function
``handler(args) -> int`` returning the exit code.
"""

from softclust_gui.cli.main import main

__all__ = ["main"]
