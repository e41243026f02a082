"""``python -m ganworks.cli``: the command line (as ``python -m ganworks``)."""

import sys

from . import main

sys.exit(main())
