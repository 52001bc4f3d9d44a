import sys

from eventvision.cli.main import main

sys.exit(main())
