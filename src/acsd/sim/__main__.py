"""``python -m acsd.sim --acs URL ...`` (the same as ``acsd sim``)."""

import sys

from acsd.sim.cli import main

sys.exit(main())
