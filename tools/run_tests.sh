#!/usr/bin/env bash
# Install what is missing (tools/install.sh), then run the whole test suite.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -m "not slow"`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/install.sh"
cd "$ROOT"
# as if the venv were activated: tools that call `python` (dist_train.sh) find it
export PATH="${MMSNNMLP_VENV:-$ROOT/.venv}/bin:$PATH"
exec "${MMSNNMLP_VENV:-$ROOT/.venv}/bin/python" -m pytest -ra "$@"
