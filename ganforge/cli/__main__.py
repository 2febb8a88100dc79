"""`python -m ganforge.cli`: the same command as `python -m ganforge`."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
