"""`python -m ganforge`: the command-line tool, as the `ganforge` script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
