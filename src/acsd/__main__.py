import sys

from acsd.entry import main

sys.exit(main())
