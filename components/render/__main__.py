"""`python -m components.render`: render a stack's objects offline (see cli.py)."""

import sys

from .cli import main

sys.exit(main())
