"""``python -m training ...`` (the same command as ``cxrviewer train ...``)."""

import sys

from training.train import cli

if __name__ == "__main__":
    sys.exit(cli())
