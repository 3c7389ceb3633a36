"""The Triton LIF kernels (``impl='triton'``), run on CPU tensors by Triton's
interpreter.

``TRITON_INTERPRET=1`` is set per test (not at import): the kernels are wrapped
by ``triton.jit`` lazily, per interpreter flag, so the flag takes effect even
though triton may already be imported by other tests. A second group of tests
compiles the same kernel for an sm_90 target without a GPU, which catches what
the interpreter does not check (typing, layouts, code generation).
"""
import numpy as np
import pytest
import torch

from helpers.lif_scalar_reference import scalar_lif
from mmsnnmlp.ops import lif, triton_utils

triton = pytest.importorskip('triton')
lif_triton = pytest.importorskip('mmsnnmlp.ops.lif_triton')

GROUPS = [1, 2, 3, 4, 7, None]
SHAPES = [(1, 2, 13, 11), (2, 1, 5, 9), (1, 1, 1, 5)]


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.delenv('MMSNNMLP_IMPL', raising=False)


def _inputs(shape, seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.6
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    tau = 0.1 + 0.8 * torch.rand(1, generator=gen, dtype=torch.float64)
    vth = -0.2 + 0.6 * torch.rand(1, generator=gen, dtype=torch.float64)
    return x.to(dtype), g.to(dtype), tau.to(dtype), vth.to(dtype)


def _run(impl, x, g, tau, vth, group, dim):
    """Output and the three gradients of sum(lif(x) * g); 0 for a parameter
    autograd never reached (one-row groups, all-tail axes)."""
    x, tau, vth = (t.detach().clone().requires_grad_(True) for t in (x, tau, vth))
    out = lif(x, tau, vth, group, dim, impl=impl)
    (out * g).sum().backward()
    grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in (x, tau, vth)]
    return [out.detach()] + grads


CASES = [(shape, group, dim) for shape in SHAPES for group in GROUPS for dim in (2, 3)]


@pytest.mark.parametrize('seed, case', list(enumerate(CASES)))
def test_float64_matches_scalar_loop(interpret, seed, case):
    shape, group, dim = case
    x, g, tau, vth = _inputs(shape, seed=seed)
    out, dx, dtau, dvth = _run('triton', x, g, tau, vth, group, dim)
    ref = scalar_lif(x.numpy(), tau.item(), vth.item(), group, dim, grad_out=g.numpy())
    assert out.dtype == dx.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx.numpy(), ref[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dtau.item(), ref[2], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dvth.item(), ref[3], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('seed, case', list(enumerate(CASES)))
def test_float32_matches_reference(interpret, seed, case):
    shape, group, dim = case
    x, g, tau, vth = _inputs(shape, seed=1000 + seed, dtype=torch.float32)
    got = _run('triton', x, g, tau, vth, group, dim)
    ref = _run('reference', x, g, tau, vth, group, dim)
    # same float32 operations in the same order (FMA contraction is off):
    # the output is bit-identical; the parameter sums differ in order
    assert got[0].dtype == torch.float32
    assert torch.equal(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got[2], ref[2], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[3], ref[3], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('dim', [2, 3])
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_reduced_precision_matches_torch_path(interpret, dtype, dim):
    """Half inputs compute in float32, like the PyTorch path."""
    x, g, tau, vth = _inputs((2, 3, 9, 14), seed=5, dtype=dtype)
    tau, vth = tau.float(), vth.float()  # module parameters stay float32
    got = _run('triton', x, g, tau, vth, 4, dim)
    ref = _run('torch', x, g, tau, vth, 4, dim)
    assert got[0].dtype == got[1].dtype == dtype
    # The interpreter rounds float32 -> bfloat16 toward zero (a GPU rounds to
    # nearest even), so bfloat16 may differ by one unit in the last place.
    tol = dict(rtol=0, atol=0) if dtype == torch.float16 else dict(rtol=8e-3, atol=1e-6)
    torch.testing.assert_close(got[0], ref[0], **tol)
    torch.testing.assert_close(got[1], ref[1], **tol)
    torch.testing.assert_close(got[2], ref[2], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[3], ref[3], rtol=1e-5, atol=1e-5)


def test_non_contiguous_input_and_grad(interpret):
    x, g, tau, vth = _inputs((2, 3, 8, 6), seed=7, dtype=torch.float32)
    x_cl = x.to(memory_format=torch.channels_last)
    g_t = g.transpose(2, 3).contiguous().transpose(2, 3)  # same values, other strides
    got = _run('triton', x_cl, g_t, tau, vth, 3, 3)
    ref = _run('reference', x, g, tau, vth, 3, 3)
    assert torch.equal(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1])


def test_parameters_without_grad(interpret):
    x, g, tau, vth = _inputs((1, 2, 8, 5), seed=11, dtype=torch.float32)
    x.requires_grad_(True)
    vth.requires_grad_(True)
    (lif(x, tau, vth, 4, 2, impl='triton') * g).sum().backward()
    assert tau.grad is None and vth.grad is not None and x.grad is not None


def test_launches_turn_fma_contraction_off(interpret, monkeypatch):
    """The options the LIF kernels are really launched with: no FMA
    contraction, so tau * o + x rounds like the reference's two ops."""
    launches, real_jit = [], lif_triton.jit

    class Spy:
        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                launches.append(kwargs)
                return self.kernel[grid](*args, **kwargs)
            return launch

    monkeypatch.setattr(lif_triton, 'jit', lambda fn: Spy(real_jit(fn)))
    x = torch.randn(1, 2, 8, 6, requires_grad=True)
    lif(x, 0.5, 0.25, group=4, dim=3, impl='triton').sum().backward()
    assert len(launches) == 2  # forward and backward
    if triton_utils.TRITON_VERSION >= (2, 2):
        assert all(kwargs['enable_fp_fusion'] is False for kwargs in launches)


def _compile_for_sm90(dtype: str, along_w: bool, backward: bool):
    """Compile the kernel for an H100 target: needs triton's bundled ptxas,
    not a GPU."""
    from helpers.aot_compile import compile_for_sm90
    ctype = 'fp64' if dtype == 'fp64' else 'fp32'
    types = {'x_ptr': '*' + dtype, 'g_ptr': '*' + dtype, 'y_ptr': '*' + dtype}
    return compile_for_sm90(lif_triton.lif_kernel, types, '*' + ctype, dict(
        ALONG_W=along_w, BACKWARD=backward, BLOCK=256, MAX_GROUP=4),
        num_warps=2, **triton_utils.NO_FP_FUSION)  # the options the launches use


@pytest.mark.parametrize('backward', [False, True], ids=['fwd', 'bwd'])
@pytest.mark.parametrize('along_w', [False, True], ids=['H', 'W'])
@pytest.mark.parametrize('dtype', ['fp32', 'fp16', 'bf16', 'fp64'])
def test_compiles_for_cuda_without_gpu(dtype, along_w, backward):
    ptx = _compile_for_sm90(dtype, along_w, backward).asm['ptx']
    assert 'fma.' not in ptx  # contraction off: rounds like the reference
    assert 'atom.' not in ptx  # no atomics: deterministic
