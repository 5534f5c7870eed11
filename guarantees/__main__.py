"""`python -m guarantees verify FILE.pdf`: see guarantees.cli."""

import sys

from guarantees.cli import main

sys.exit(main())
