import sys

from b24wh_simulator.cli import main

sys.exit(main())
