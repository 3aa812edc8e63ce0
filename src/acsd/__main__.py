import sys

from acsd.cli import main

sys.exit(main())
