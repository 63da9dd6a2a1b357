"""``python -m audioprobe``: the ``audioprobe`` command line (:func:`audioprobe.cli.main`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
