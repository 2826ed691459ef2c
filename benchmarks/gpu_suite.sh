#!/usr/bin/env bash
# The GPU figures in one call (issue 19; benchmarks/README.md).
#
#   bash benchmarks/gpu_suite.sh prepare [--small] [--model NAME|PATH]   # here, on the CPU:
#       packs .bench/gpu-suite (model, real exam, phantom CPU run, cp312 wheels; < 64 MiB with
#       the working tree) and prints the device tool call to make
#   bash benchmarks/gpu_suite.sh [--parts ...] [--cpu] [--small]         # on the GPU machine:
#       installs the carried wheels, measures, writes benchmarks/results/gpu_suite_*.json and
#       .txt (and into $OUT); --cpu --small is the CPU dry run of tests/test_gpu_suite.py
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${GPU_SUITE_BUNDLE:-.bench/gpu-suite}

if [ "${1:-}" = prepare ]; then
  shift
  exec "${PYTHON:-.venv/bin/python}" -m benchmarks.gpu_suite prepare --bundle "$BUNDLE" "$@"
fi

PYTHON=${PYTHON:-python3}
# The wheels are built for the GPU machine's Python 3.12; another Python uses its own packages.
if compgen -G "$BUNDLE/wheels/*.whl" >/dev/null &&
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
  site=$(mktemp -d /tmp/gpu-suite-site.XXXXXX)
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
    "$BUNDLE"/wheels/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
if [ -n "${OUT:-}" ]; then  # the device tool brings back what is written under $OUT
  "$PYTHON" -m benchmarks.gpu_suite run --bundle "$BUNDLE" "$@" 2>&1 | tee "$OUT/gpu_suite.log"
else
  exec "$PYTHON" -m benchmarks.gpu_suite run --bundle "$BUNDLE" "$@"
fi
