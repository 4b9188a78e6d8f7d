import sys

from abiguard.cli import main

sys.exit(main())
