"""Entry point of the frozen bundle: one program behind two executables.

The bundle holds ``SoftClust`` (the desktop app; no console window on Windows) and
``softclust-cli`` (the headless ``softclust`` command line). Both are built from this one
script and share every library in the bundle; the name of the executable that was started
decides which one runs.
"""

import multiprocessing
import sys
from pathlib import Path

CLI_NAME = "softclust-cli"  # packaging/softclust_bundle.py builds the executable by this name


def main() -> int:
    multiprocessing.freeze_support()  # a worker process re-enters here; let it run its task
    if Path(sys.executable).stem.lower() == CLI_NAME:
        from softclust_gui.cli import main as cli_main

        return cli_main()
    from softclust_gui.ui.app import main as gui_main

    return gui_main()


if __name__ == "__main__":
    sys.exit(main())
