"""`python -m fmnist_core ...`: see fmnist_core/cli.py."""

import sys

from .cli import main

sys.exit(main())
