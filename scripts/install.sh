#!/usr/bin/env bash
# Installs wanderlust (editable) into the active Python, with optional extras: atari, envpool,
# wandb, dev, all (comma-separated).
#
# torch comes first so that pip never resolves it by itself: an importable torch (say a CUDA build
# a GPU user already has) is kept as it is; otherwise torch==$WANDERLUST_TORCH (default 2.13.0) is
# installed, which takes the local CPU wheel on machines that carry one.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python=${PYTHON:-python3}
if ! "$python" -c "import torch" 2>/dev/null; then
  "$python" -m pip install "torch==${WANDERLUST_TORCH:-2.13.0}"
fi
if [ -n "$extras" ]; then
  "$python" -m pip install -e ".[$extras]"
else
  "$python" -m pip install -e .
fi
