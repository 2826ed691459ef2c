"""bids-arca: pre- and post-operative glioma segmentation as a BIDS App."""

import os as _os

# OpenMP threads that spin while they wait for each other turn a shared machine (other jobs,
# sessions or test workers beside us) into a several-fold slowdown of the networks: on the
# 2-core development VM under load, WNet's axial pass took 242 s with 2 spinning threads, 40 s
# with passive ones and 37 s with one thread (docs/model.md). This must be set before PyTorch
# loads its OpenMP runtime; a value the user set wins.
_os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

# Same exam, same transforms (docs/outputs.md, "Reproducibility"). antsRegistration jitters its
# regular metric samples with random numbers seeded from the clock unless ANTS_RANDOM_SEED is set
# (ANTs pull request 599), and its Mattes mutual information adds the threads' histograms in the
# order they finish, so only one ITK thread repeats a registration exactly (ANTs issue 1464;
# measured: with a fixed seed, two 2-thread runs on TCGA-FG-6692's T2w differed by 0.15 in the
# matrix). ITK reads its thread count once per process, so both are set here, before antspyx
# loads, and override the environment: the results must not depend on it. The cost: three
# registrations took 60 s instead of 36 s with a free second core (docs/outputs.md).
_os.environ['ANTS_RANDOM_SEED'] = '20220801'
_os.environ['ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS'] = '1'
# cuBLAS repeats its results only with a fixed workspace (PyTorch's reproducibility notes); it is
# read when CUDA starts (bids_arca.model.runtime.deterministic).
_os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')

__version__ = '0.1.0'
