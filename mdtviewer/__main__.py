import sys

from mdtviewer.cli import main

if __name__ == "__main__":  # guarded: worker pools (forkserver/spawn) re-import __main__
    sys.exit(main())
