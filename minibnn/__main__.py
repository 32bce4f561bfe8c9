"""``python -m minibnn``: the same as the ``minibnn`` command (see :mod:`minibnn.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
