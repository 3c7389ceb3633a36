"""tools/model_converters/snnmlp_to_backbone.py, and mmengine training checkpoints
read outside tools/train.py."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmsnnmlp.checkpoint import safe_load
from helpers.released_layout import ARCHS, released_state_dict, training_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_model_converter(tmp_path):
    src = tmp_path / 'snnmlp_tiny_81.88.pt'
    state = released_state_dict(*ARCHS['tiny'], seed=5)
    src.write_bytes(training_checkpoint(state))
    dst = tmp_path / 'backbone.pth'
    tool = [sys.executable, os.path.join(ROOT, 'tools/model_converters/snnmlp_to_backbone.py')]
    out = subprocess.run(tool + [str(src), str(dst)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    converted = torch.load(dst)['state_dict']
    assert set(converted) == {k for k in state if not k.startswith(('head.', 'norm.'))}
    assert all(torch.equal(converted[k], state[k]) for k in converted)
    before = dst.read_bytes()
    again = subprocess.run(tool + [str(src), str(dst)], capture_output=True, text=True)
    assert again.returncode != 0 and 'exists; pass --force' in again.stderr
    assert dst.read_bytes() == before


def _mmengine_training_checkpoint(path, model):
    """What mmengine's Runner saves: weights under backbone., message hub
    history buffers, numpy values in meta."""
    from mmengine.logging.history_buffer import HistoryBuffer
    buf = HistoryBuffer()
    buf.update(0.5)
    torch.save({'meta': {'epoch': 3, 'iter': 30, 'seed': np.int64(7)},
                'state_dict': {f'backbone.{k}': v for k, v in model.state_dict().items()},
                'message_hub': {'log_scalars': {'train/loss': buf}, 'runtime_info': {}},
                'optimizer': {'state': {}, 'param_groups': []}}, path)


def test_mmengine_training_checkpoint_into_backbone_and_converter(tmp_path):
    """Outside tools/train.py: the converter and init_weights read mmengine
    training checkpoints (they called them code-running pickles)."""
    from mmsnnmlp.models import SNNMLP
    source = SNNMLP(dict(embed_dims=8, depths=(1, 1, 1, 1)))
    path = tmp_path / 'epoch_3.pth'
    _mmengine_training_checkpoint(path, source)
    code = ('import sys, torch\n'
            'from mmsnnmlp.models import SNNMLP\n'
            'm = SNNMLP(dict(embed_dims=8, depths=(1, 1, 1, 1)),\n'
            '           init_cfg=dict(type="Pretrained", checkpoint=sys.argv[1]))\n'
            'm.init_weights()\n'
            'print(float(m.layers[0].blocks[0].mlp.fc1.weight.sum()))\n')
    out = subprocess.run([sys.executable, '-c', code, str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split()[-1]) == pytest.approx(
        float(source.layers[0].blocks[0].mlp.fc1.weight.sum()))
    tool = [sys.executable, os.path.join(ROOT, 'tools/model_converters/snnmlp_to_backbone.py')]
    out = subprocess.run(tool + [str(path), str(tmp_path / 'bb.pth')], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert set(safe_load(str(tmp_path / 'bb.pth'))['state_dict']) == set(source.state_dict())
