"""Both ways safe_load unpickles: torch's weights_only allowlist (torch >= 2.6)
and our restricted unpickler (older torch), for parametrised tests."""
import pytest

from mmsnnmlp.checkpoint import TORCH_ALLOWLIST

UNPICKLERS = pytest.mark.parametrize('restricted', [
    pytest.param(False, id='torch-allowlist', marks=pytest.mark.skipif(
        not TORCH_ALLOWLIST, reason='torch < 2.6 has no allowlist API')),
    pytest.param(True, id='own-unpickler'),
])


class Payload:
    """Pickles to a call of ``os.system('touch MARKER')``: a checkpoint carrying
    it proves code ran if the marker file appears."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os
        return (os.system, (f'touch {self.marker}',))
