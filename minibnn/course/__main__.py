"""``python -m minibnn.course list | make | grade``: the same as ``minibnn assignments``."""
import sys

from .command import main

sys.exit(main())
