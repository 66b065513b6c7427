"""``python -m routerm`` = the ``routerm`` console script."""
import sys

from routerm.cli import main

sys.exit(main())
