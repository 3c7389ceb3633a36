#!/usr/bin/env bash
# Install what is missing (tools/install.sh), then run the main job on built-in toy data:
# generate COCO/ADE20K-layout data, train Mask R-CNN and UperNet on CPU, evaluate, draw.
# Extra arguments go to tools/misc/toy_demo.py (e.g. --work-dir DIR).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/install.sh"
cd "$ROOT"
# as if the venv were activated: tools that call `python` (dist_train.sh) find it
export PATH="${MMSNNMLP_VENV:-$ROOT/.venv}/bin:$PATH"
exec "${MMSNNMLP_VENV:-$ROOT/.venv}/bin/python" tools/misc/toy_demo.py "$@"
