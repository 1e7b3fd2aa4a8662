import sys

from storytelling.training.cli import main

sys.exit(main())
