"""``bids-arca`` with the small training patches of the tests, for the torchrun launcher test."""

import sys

from bids_arca.cli.run import main
from bids_arca.training import trainer

if __name__ == '__main__':
    trainer.WANG_PATCHES.update({'wt': (11, 16, 16), 'tc': (11, 16, 16), 'et': (11, 16, 16)})
    trainer.Trainer.batch_size = 2
    trainer.Trainer.iterations_per_epoch = 2
    sys.exit(main(sys.argv[1:]))
