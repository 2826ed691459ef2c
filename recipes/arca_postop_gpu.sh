#!/usr/bin/env bash
# The shipped post-operative model's recipe at full scale, on one CUDA GPU (docs/training.md):
# 12 simulated operations per training exam, 32 training phantoms, Wang's patches, batch 5, every
# layer trained, early stopping. Needs bids-arca installed (pip install -e .) and the shared data
# folder (../shared or $BIDS_ARCA_SHARED). Not run yet: no GPU was lent to the session that wrote it.
#
#   bash recipes/arca_postop_gpu.sh [--out models/arca-postop] [--work DIR] [other recipe options]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python recipes/arca_postop.py --scale full --device cuda --jobs "$(nproc)" --threads 4 "$@"
