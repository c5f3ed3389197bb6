"""`python -m gateway` runs the CLI."""

import sys

from gateway.cli import main

sys.exit(main())
