"""The fused Triton LIF kernel, run on CPU tensors by Triton's interpreter.

``TRITON_INTERPRET=1`` is set per test (not at import): lif_triton wraps its
kernel with triton.jit lazily and caches it per interpret flag, so the flag
takes effect even though triton may already be imported by other tests.
A second group of tests compiles the same kernel for an sm_90 target without
a GPU, which catches what the interpreter does not check (typing, layouts,
code generation).
"""
import numpy as np
import pytest
import torch

from lif_scalar_reference import scalar_lif
from mmsnnmlp.ops import lif as lif_dispatch
from mmsnnmlp.ops import lif_reference
from mmsnnmlp.ops.lif import _LIFFunction

triton = pytest.importorskip('triton')
lif_triton = pytest.importorskip('mmsnnmlp.ops.lif_triton')

GROUPS = [1, 2, 3, 4, 7, None]
SHAPES = [(1, 2, 13, 11), (2, 1, 5, 9), (1, 1, 1, 5)]


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.delenv('MMSNNMLP_DISABLE_TRITON', raising=False)


def _inputs(shape, seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.6
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    tau = 0.1 + 0.8 * torch.rand(1, generator=gen, dtype=torch.float64)
    vth = -0.2 + 0.6 * torch.rand(1, generator=gen, dtype=torch.float64)
    return x.to(dtype), g.to(dtype), tau.to(dtype), vth.to(dtype)


def _run(impl, x, g, tau, vth, group, dim):
    """Output and the three gradients of sum(impl(x) * g); 0 for a parameter
    autograd never reached (one-row groups, all-tail axes)."""
    x, tau, vth = (t.detach().clone().requires_grad_(True) for t in (x, tau, vth))
    out = impl(x, tau, vth, group, dim)
    (out * g).sum().backward()
    grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in (x, tau, vth)]
    return [out.detach()] + grads


@pytest.mark.parametrize('dim', [2, 3])
@pytest.mark.parametrize('group', GROUPS)
@pytest.mark.parametrize('shape', SHAPES)
def test_float64_matches_scalar_loop(interpret, shape, group, dim):
    seed = 100 * SHAPES.index(shape) + 10 * GROUPS.index(group) + dim  # fixed per case
    x, g, tau, vth = _inputs(shape, seed=seed)
    out, dx, dtau, dvth = _run(lif_triton.lif, x, g, tau, vth, group, dim)
    ref = scalar_lif(x.numpy(), tau.item(), vth.item(), group, dim, grad_out=g.numpy())
    assert out.dtype == dx.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx.numpy(), ref[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dtau.item(), ref[2], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dvth.item(), ref[3], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('dim', [2, 3])
@pytest.mark.parametrize('group', GROUPS)
@pytest.mark.parametrize('shape', SHAPES)
def test_float32_matches_reference(interpret, shape, group, dim):
    seed = 1000 + 100 * SHAPES.index(shape) + 10 * GROUPS.index(group) + dim
    x, g, tau, vth = _inputs(shape, seed=seed, dtype=torch.float32)
    got = _run(lif_triton.lif, x, g, tau, vth, group, dim)
    ref = _run(lif_reference, x, g, tau, vth, group, dim)
    # same float32 operations in the same order (FMA contraction is off):
    # the output and dx are bit-identical; the parameter sums differ in order
    assert got[0].dtype == torch.float32
    assert torch.equal(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got[2], ref[2], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[3], ref[3], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('dim', [2, 3])
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_reduced_precision_matches_fast_path(interpret, dtype, dim):
    """Half inputs compute in float32, like the PyTorch fast path."""
    x, g, tau, vth = _inputs((2, 3, 9, 14), seed=5, dtype=dtype)
    tau, vth = tau.float(), vth.float()  # module parameters stay float32
    got = _run(lif_triton.lif, x, g, tau, vth, 4, dim)
    ref = _run(_LIFFunction.apply, x, g, tau, vth, 4, dim)
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
    got = _run(lif_triton.lif, x_cl, g_t, tau, vth, 3, 3)
    ref = _run(lif_reference, x, g, tau, vth, 3, 3)
    assert torch.equal(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1])


def test_parameters_without_grad(interpret):
    x, g, tau, vth = _inputs((1, 2, 8, 5), seed=11, dtype=torch.float32)
    x.requires_grad_(True)
    vth.requires_grad_(True)
    (lif_triton.lif(x, tau, vth, 4, 2) * g).sum().backward()
    assert tau.grad is None and vth.grad is not None and x.grad is not None


def test_dispatch_from_lif(interpret, monkeypatch):
    """lif() hands CUDA-usable tensors to the kernel; pretend CPU qualifies."""
    calls = []

    def spy(*args):
        calls.append(args)
        return triton_lif(*args)

    triton_lif = lif_triton.lif
    monkeypatch.setattr(lif_triton, 'usable', lambda x: True)
    monkeypatch.setattr(lif_triton, 'lif', spy)
    x = torch.randn(1, 2, 9, 7)
    out = lif_dispatch(x, 0.25, 0.1, group=4, dim=-1)  # python floats, dim -1
    assert len(calls) == 1
    assert torch.equal(out, lif_reference(x, 0.25, 0.1, group=4, dim=3))


def test_usable_is_cuda_only(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    assert not lif_triton.usable(torch.randn(1, 1, 4, 4))
    if torch.cuda.is_available():
        x = torch.randn(1, 1, 4, 4, device='cuda')
        monkeypatch.delenv('MMSNNMLP_DISABLE_TRITON', raising=False)
        assert lif_triton.usable(x)
        monkeypatch.setenv('MMSNNMLP_DISABLE_TRITON', '1')
        assert not lif_triton.usable(x)


def _compile_for_sm90(dtype: str, along_w: bool, backward: bool):
    """Compile the kernel for an H100 target: needs triton's bundled ptxas,
    not a GPU."""
    compiler = pytest.importorskip('triton.compiler')
    from triton.backends.compiler import GPUTarget
    kernel = lif_triton._jit_kernel(False)
    ctype = 'fp64' if dtype == 'fp64' else 'fp32'
    sig = {}
    for name in kernel.arg_names:
        if name.isupper():
            sig[name] = 'constexpr'
        elif name in ('x_ptr', 'g_ptr', 'y_ptr'):
            sig[name] = '*' + dtype
        elif name.endswith('_ptr'):
            sig[name] = '*' + ctype
        else:
            sig[name] = 'i32'
    src = compiler.ASTSource(fn=kernel, signature=sig, constexprs=dict(
        ALONG_W=along_w, BACKWARD=backward, BLOCK=256))
    return triton.compile(src, target=GPUTarget('cuda', 90, 32),
                          options=dict(num_warps=2, enable_fp_fusion=False))


@pytest.mark.parametrize('backward', [False, True], ids=['fwd', 'bwd'])
@pytest.mark.parametrize('along_w', [False, True], ids=['H', 'W'])
@pytest.mark.parametrize('dtype', ['fp32', 'fp16', 'bf16', 'fp64'])
def test_compiles_for_cuda_without_gpu(monkeypatch, dtype, along_w, backward):
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)
    if not isinstance(lif_triton._add, triton.runtime.JITFunction):
        pytest.skip('lif_triton was imported under TRITON_INTERPRET=1')
    try:
        compiled = _compile_for_sm90(dtype, along_w, backward)
    except (ImportError, FileNotFoundError, RuntimeError) as err:
        if 'ptxas' in str(err) or isinstance(err, (ImportError, FileNotFoundError)):
            pytest.skip(f'no CUDA toolchain for ahead-of-time compilation: {err}')
        raise
    ptx = compiled.asm['ptx']
    assert 'fma.' not in ptx  # contraction off: rounds like the reference


def test_use_reference_lif_switches_modules_and_restores():
    """use_reference_lif (mmsnnmlp/ops/lif.py) runs the benchmark's
    snnmlp-t-ref model: LIF modules use lif_reference inside it only."""
    from mmsnnmlp.ops import LIF
    from mmsnnmlp.ops.lif import use_reference_lif
    m = LIF(dim=3, group=4)
    x = torch.randn(1, 2, 3, 9, requires_grad=True)
    with use_reference_lif():
        with use_reference_lif():  # nesting restores what each entry replaced
            pass
        ref_out = m(x)
    fast_out = m(x)
    assert 'LIFFunction' not in type(ref_out.grad_fn).__name__
    assert 'LIFFunction' in type(fast_out.grad_fn).__name__
    assert torch.equal(ref_out, fast_out)
