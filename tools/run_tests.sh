#!/usr/bin/env bash
# Install what is missing (tools/install.sh), then run the whole test suite.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -m "not slow"`.
# Without arguments (what CI runs) the core tests (LIF, backbone, checkpoint
# loading, any-size inputs) also run on the oldest supported stack, torch 2.1.2.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CORE_TESTS=(tests/ops/test_lif_values.py tests/ops/test_lif_module.py
            tests/ops/test_lif_properties.py tests/models/test_backbone.py
            tests/models/test_backbone_any_size.py tests/checkpoint/test_checkpoint_loading.py
            tests/checkpoint/test_checkpoint_io.py tests/checkpoint/test_integrity.py
            tests/ops/test_nhwc_paths.py tests/models/test_channels_last_inside.py)
bash "$ROOT/tools/install.sh"
cd "$ROOT"
# as if the venv were activated: tools that call `python` (dist_train.sh) find it
export PATH="${MMSNNMLP_VENV:-$ROOT/.venv}/bin:$PATH"
# two workers (pytest-xdist): most tests are single-threaded; MMSNNMLP_TEST_WORKERS=0 runs serially
"${MMSNNMLP_VENV:-$ROOT/.venv}/bin/python" -m pytest -ra -n "${MMSNNMLP_TEST_WORKERS:-2}" "$@"
if [ $# -eq 0 ]; then
    bash "$ROOT/tools/install.sh" --oldest
    echo "== core tests on the oldest supported stack (torch 2.1.2) =="
    "${MMSNNMLP_OLDEST_VENV:-$ROOT/.venv-torch2.1}/bin/python" -m pytest -ra -p no:cacheprovider \
        "${CORE_TESTS[@]}"
fi
