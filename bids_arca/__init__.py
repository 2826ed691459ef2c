"""bids-arca: pre- and post-operative glioma segmentation as a BIDS App."""

import os as _os

# OpenMP threads that spin while they wait for each other turn a shared machine (other jobs,
# sessions or test workers beside us) into a several-fold slowdown of the networks: on the
# 2-core development VM under load, WNet's axial pass took 242 s with 2 spinning threads, 40 s
# with passive ones and 37 s with one thread (docs/model.md). This must be set before PyTorch
# loads its OpenMP runtime; a value the user set wins.
_os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

__version__ = '0.1.0'
