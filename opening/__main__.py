"""`python -m opening`: see opening/cli.py."""

from opening.cli import main

raise SystemExit(main())
