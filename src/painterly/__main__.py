"""`python -m painterly ...`: the one place (with the console script) that exits."""

import sys

from .cli import main

sys.exit(main())
