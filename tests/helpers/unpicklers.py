"""Both ways safe_load unpickles: torch's weights_only allowlist (torch >= 2.6)
and our restricted unpickler (older torch), for parametrised tests."""
import pytest

from mmsnnmlp.checkpoint import TORCH_ALLOWLIST

UNPICKLERS = pytest.mark.parametrize('restricted', [
    pytest.param(False, id='torch-allowlist', marks=pytest.mark.skipif(
        not TORCH_ALLOWLIST, reason='torch < 2.6 has no allowlist API')),
    pytest.param(True, id='own-unpickler'),
])
