import sys

from wanderlust.run.cli import main

sys.exit(main())
