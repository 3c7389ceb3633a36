"""The Triton kernel checks of :mod:`mmsnnmlp.ops.checks`, the ones that
tools/analysis_tools/gpu_report.py reports: on a CUDA device (marker ``gpu``,
skipped without one), and on tiny shapes under Triton's interpreter on CPU,
so that the check functions themselves run in CI."""
import pytest
import torch
from torch import nn

from mmsnnmlp.ops import LIF, NormAct, checks, set_impl

triton = pytest.importorskip('triton')

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
DTYPE_IDS = [str(d)[len('torch.'):] for d in checks.DTYPES]


def _failures(results):
    return [r for r in results if not r.ok]


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize('dtype', checks.DTYPES, ids=DTYPE_IDS)
def test_lif_kernels_on_cuda(dtype):
    results = checks.check_lif('cuda', dtype, checks.LIF_SHAPES)
    assert len(results) == len(checks.LIF_SHAPES) * len(checks.GROUPS) * 2
    assert not _failures(results)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize('dtype', checks.DTYPES, ids=DTYPE_IDS)
def test_norm_act_kernels_on_cuda(dtype):
    results = checks.check_norm_act('cuda', dtype, checks.NORM_ACT_SHAPES)
    assert len(results) == len(checks.NORM_ACT_SHAPES) * 2
    assert not _failures(results)


@pytest.mark.gpu
@needs_cuda
def test_compiled_backbone_on_cuda():
    from mmsnnmlp.models import SNNMLP
    torch.manual_seed(0)
    model = SNNMLP('tiny', drop_path_rate=0.0).cuda()
    x = torch.randn(2, 3, 224, 320, device='cuda')
    (result,) = checks.check_compile(model, x, 'aot_eager')
    assert result.ok, result


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.delenv('MMSNNMLP_IMPL', raising=False)


TINY = [(2, 3, 5, 6)]  # a tail along H and W with group 4


def _tiny_model(impl):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), NormAct(4, act='gelu'), LIF(2, 4), LIF(3, None),
                          NormAct(4))
    return set_impl(model, impl)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16, torch.float64],
                         ids=['float32', 'bfloat16', 'float64'])
def test_checks_pass_under_the_interpreter(interpret, dtype):
    results = (checks.check_lif('cpu', dtype, TINY, groups=(4, None))
               + checks.check_norm_act('cpu', dtype, TINY))
    assert len(results) == 4 + 2
    assert not _failures(results)
    # the library ops (not the reference 'auto' traces on CPU) under compile
    x = torch.randn(2, 3, 5, 6, dtype=dtype)
    (result,) = checks.check_compile(_tiny_model('triton').to(dtype), x, 'aot_eager')
    assert result.ok and result.kernel == 'Sequential compiled', result


def test_checks_catch_a_wrong_kernel(interpret, monkeypatch):
    """The checks can fail: one unit in the last place of one output value of
    the LIF kernel, a small error in the norm_act input gradient, and a
    compiled model that differs from eager."""
    from mmsnnmlp.ops import lif_triton, norm_act_triton
    lif_forward, norm_backward = lif_triton.forward, norm_act_triton.backward

    def lif_off_by_one_ulp(*args):
        out = lif_forward(*args)
        out.view(-1)[-1] = torch.nextafter(out.view(-1)[-1], torch.tensor(float('inf')))
        return out

    def norm_dx_off(*args):
        dx, dweight, dbias = norm_backward(*args)
        return dx * 1.01, dweight, dbias

    monkeypatch.setattr(lif_triton, 'forward', lif_off_by_one_ulp)
    monkeypatch.setattr(norm_act_triton, 'backward', norm_dx_off)
    lif_results = checks.check_lif('cpu', torch.float32, TINY, groups=(4,))
    assert [r.ok for r in lif_results] == [False, False]
    norm_results = checks.check_norm_act('cpu', torch.float32, TINY)
    assert [r.ok for r in norm_results] == [False, False]

    class Drifts(nn.Module):
        """Its compiled forward differs from eager: the flag is read at trace time."""
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(1))

        def forward(self, x):
            offset = 1.0 if torch.compiler.is_compiling() else 0.0
            return x * self.weight + offset

    if not hasattr(torch.compiler, 'is_compiling'):
        pytest.skip('torch < 2.3: no torch.compiler.is_compiling')
    (result,) = checks.check_compile(Drifts(), torch.zeros(2, 3))
    assert not result.ok and result.max_err == 1.0
