import sys

from mdtviewer.cli import main

sys.exit(main())
