"""``python -m mmsnnmlp.check`` on CPU: the report's fields, the self-check
under Triton's interpreter, and the exit code (1 when a self-check fails)."""
import os
import subprocess
import sys

import pytest
import torch

from mmsnnmlp import check
from mmsnnmlp.ops import dispatch, selfcheck

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def clean_env(monkeypatch):
    for name in ('MMSNNMLP_IMPL', 'MMSNNMLP_SELFCHECK', 'TRITON_INTERPRET'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(dispatch, '_triton_failures', {})
    monkeypatch.setattr(selfcheck, '_done', {})


def test_check_runs_on_cpu_under_the_interpreter():
    pytest.importorskip('triton')
    env = {k: v for k, v in os.environ.items()
           if k not in ('MMSNNMLP_IMPL', 'MMSNNMLP_SELFCHECK')}
    env.update(TRITON_INTERPRET='1', CUDA_VISIBLE_DEVICES='')
    out = subprocess.run([sys.executable, '-m', 'mmsnnmlp.check', '--seconds', '0.5',
                          '--dtypes', 'float32'], capture_output=True, text=True,
                         timeout=300, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    for field in ('mmsnnmlp 0.', 'python: 3.', f'torch: {torch.__version__}', 'triton: ',
                  'mmengine: ', 'mmcv: ', 'mmdet: ', 'mmseg: ', 'timm: ',
                  'environment: TRITON_INTERPRET=1', 'cpu: ', ', ISA ',
                  'cpu lif float32: ok (max error', 'cpu norm_act float32: ok (max error',
                  "impl='auto' picks\n  cpu: lif torch, norm_act torch",
                  'speed on cpu (1x96x56x56 float32, forward + backward)',
                  'lif along H: fused ', 'lif along W: fused ', 'norm_act + GELU: fused ',
                  'result: ok (2 of 2 self-checks pass)'):
        assert field in text, f'{field!r} not in\n{text}'


def test_check_says_where_the_self_check_runs(clean_env, capsys):
    assert check.main(['--seconds', '0']) == 0
    text = capsys.readouterr().out
    if dispatch.triton is not None:
        assert 'cpu: runs on CUDA devices only (TRITON_INTERPRET=1 runs it here' in text
    assert 'result: ok (no self-check ran here)' in text and 'speed on' not in text


def test_a_failed_self_check_exits_non_zero(clean_env, monkeypatch, capsys):
    pytest.importorskip('triton')
    from mmsnnmlp.ops import lif_triton
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.setattr(selfcheck, 'NORM_ACT_SHAPES', selfcheck.NORM_ACT_SHAPES[:1])
    real = lif_triton.backward

    def wrong(*args):  # a wrong dL/dtau
        grad_x, grad_tau, grad_vth = real(*args)
        return grad_x, grad_tau + 1, grad_vth
    monkeypatch.setattr(lif_triton, 'backward', wrong)
    assert check.main(['--seconds', '0', '--dtypes', 'float32']) == 1
    text = capsys.readouterr().out
    assert 'cpu lif float32: FAILED: 2x5x7x9 group=4 dim=2: max error' in text
    assert 'cpu norm_act float32: ok' in text
    assert 'result: FAILED (1 of 2 self-checks pass)' in text
    assert dispatch._triton_failures == {}  # the command checks; it records nothing
