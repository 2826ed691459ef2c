#!/usr/bin/env bash
# benchmarks/train_compare.py on a GPU machine that has PyTorch but none of our other packages.
#
#   bash benchmarks/train_compare.sh prepare   # here (CPU): fills .bench/ (about 40 MB)
#   bash benchmarks/train_compare.sh device-a  # on the GPU: step times + fine-tuning (~4 min)
#   bash benchmarks/train_compare.sh device-b  # on the GPU: AR-CA vs CA-CNN vs AR (~9 min)
#
# prepare: the BraTS-2017 weights converted to our format, the real case brats-gli-00001-000
# and wheels of the pure-Python packages the GPU image lacks (nibabel, nilearn for the phantom
# anatomy, pydicom, monai). With the device tool: run(command="bash benchmarks/train_compare.sh
# device-a", carry=[".bench"], timeout_s=420), then the same with device-b (timeout_s=600) on
# the still-warm machine: device-b reuses the phantoms device-a made in /tmp (or makes them).
# Results come back from $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=.bench
SHARED=${BIDS_ARCA_SHARED:-../shared}
PYTHON=${PYTHON:-python3}

case "${1:-}" in
prepare)
  mkdir -p "$BENCH/wheels" "$BENCH/shared/data/real/brats-gli-00001-000/algorithm_segmentations"
  real="$SHARED/data/real/brats-gli-00001-000"
  cp "$real"/BraTS-GLI-00001-000-{t1c,t1n,t2f,t2w}.nii.gz "$BENCH/shared/data/real/brats-gli-00001-000/"
  cp "$real/algorithm_segmentations/seg-BraTS23_1.nii.gz" \
    "$BENCH/shared/data/real/brats-gli-00001-000/algorithm_segmentations/"
  rm -rf "$BENCH/brats17-cacnn"
  BIDS_ARCA_MODELS="$BENCH" $PYTHON -m bids_arca.model.cli import-brats17 \
    "$SHARED/weights/brats17-cacnn"
  $PYTHON -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    -d "$BENCH/wheels" nibabel==5.4.2 nilearn==0.14.1 pydicom==3.0.2 monai==1.6.1
  du -sh "$BENCH"
  ;;
device-a | device-b)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$BENCH"/wheels/*.whl
  export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
  parts=steptime,finetune
  [ "$1" = device-b ] && parts=compare
  python3 benchmarks/train_compare.py --out "$OUT" --parts "$parts" --workers 14 \
    --brats17 "$BENCH/brats17-cacnn" --shared "$BENCH/shared" 2>&1 | tee "$OUT/log-$1.txt"
  ;;
*)
  echo "usage: $0 prepare|device-a|device-b" >&2
  exit 64
  ;;
esac
