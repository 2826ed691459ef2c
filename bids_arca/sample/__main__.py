"""``python -m bids_arca.sample``: the ``bids-arca-sample`` command."""

import sys

from bids_arca.sample.cli import main

sys.exit(main())
