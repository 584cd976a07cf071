"""The one place that configures logging.

Modules log through ``logging.getLogger(__name__)``; entry points call ``configure`` once.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys

from softclust_gui import paths

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(threadName)s] %(message)s"
_MAX_BYTES = 2_000_000
_BACKUPS = 5
_configured = False


def configure(verbose: bool = False) -> None:
    """Log to a rotating file in the user's log folder, and to stderr.

    The file always gets DEBUG and up; the console gets WARNING and up, or DEBUG with
    ``verbose``. Calling it again only adjusts the console level.
    """
    global _configured
    root = logging.getLogger()
    console_level = logging.DEBUG if verbose else logging.WARNING
    if _configured:
        for handler in root.handlers:
            if getattr(handler, "_softclust_console", False):
                handler.setLevel(console_level)
        return

    root.setLevel(logging.DEBUG)
    formatter = logging.Formatter(_FORMAT)
    try:
        file_handler = logging.handlers.RotatingFileHandler(
            paths.log_file(), maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8"
        )
    except OSError as exc:  # a read-only home must not stop the app
        print(
            f"SoftClust: cannot write the log file ({exc}); logging to the console only.",
            file=sys.stderr,
        )
    else:
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)

    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level)
    console.setFormatter(formatter)
    console._softclust_console = True
    root.addHandler(console)
    # Third-party chatter stays out of the DEBUG trail.
    for noisy in ("PIL", "matplotlib", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True
    logging.getLogger(__name__).debug("logging to %s", paths.log_file())
