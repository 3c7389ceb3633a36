"""The allowlist that lets mmengine training state through the safe unpickling."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmsnnmlp.checkpoint import CheckpointError, safe_load
from helpers.unpicklers import UNPICKLERS


class _Sneaky:
    """getattr on an allowed class, but not one of its statistics methods."""

    def __reduce__(self):
        from mmengine.logging.history_buffer import HistoryBuffer
        return (getattr, (HistoryBuffer, 'register_statistics'))


@UNPICKLERS
def test_mmengine_allowlist_is_narrow(tmp_path, restricted):
    from mmengine.logging.history_buffer import HistoryBuffer
    buf = HistoryBuffer()
    buf.update(1.5)
    path = tmp_path / 'hub.pth'
    torch.save({'buffer': buf, 'array': np.arange(3.0), 'scalar': np.float64(2.0)}, path)
    loaded = safe_load(str(path), restricted=restricted)
    assert loaded['buffer'].mean() == 1.5 and loaded['scalar'] == 2.0
    torch.save({'x': _Sneaky()}, tmp_path / 'evil.pth')
    with pytest.raises(CheckpointError, match='only HistoryBuffer statistics methods'):
        safe_load(str(tmp_path / 'evil.pth'), restricted=restricted)


def test_import_installs_the_allowlist_for_plain_torch_load(tmp_path):
    """torch >= 2.6 loads with weights_only by default: after `import mmsnnmlp`,
    mmengine training state loads with a plain torch.load too."""
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmsnnmlp.checkpoint import TORCH_ALLOWLIST
    if not TORCH_ALLOWLIST:
        pytest.skip('torch < 2.6 does not load with weights_only by default')
    buf = HistoryBuffer()
    buf.update(2.5)
    torch.save({'buffer': buf, 'scalar': np.float32(1.0)}, tmp_path / 'hub.pth')
    code = ('import sys, torch, mmsnnmlp\n'
            'print(torch.load(sys.argv[1])["buffer"].mean())\n')
    out = subprocess.run([sys.executable, '-c', code, str(tmp_path / 'hub.pth')],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == '2.5'
