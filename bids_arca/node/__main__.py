"""``python -m bids_arca.node`` runs ``bids-arca-node``."""

import sys

from bids_arca.node.cli import main

if __name__ == '__main__':
    sys.exit(main())
