"""``python -m cxrviewer`` is the same as the ``cxrviewer`` console script."""

import sys

from cxrviewer.cli import main

if __name__ == "__main__":
    sys.exit(main())
