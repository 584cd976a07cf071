"""`python -m softclust_gui` opens the desktop app."""

import sys

from softclust_gui.ui.app import main

if __name__ == "__main__":
    sys.exit(main())
