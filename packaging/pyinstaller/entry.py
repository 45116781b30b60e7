"""The bundle's entry point: the same `mdtviewer` command as the wheel's console script."""

import multiprocessing
import sys

from mdtviewer.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the index pool's workers start through this executable
    sys.exit(main())
