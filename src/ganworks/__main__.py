"""``python -m ganworks`` (and ``torchrun ... -m ganworks train``): the command line."""

import sys

from .cli import main

sys.exit(main())
