"""``python -m bids_arca`` runs the BIDS App command line."""

import sys

from bids_arca.cli.run import main

if __name__ == '__main__':
    sys.exit(main())
