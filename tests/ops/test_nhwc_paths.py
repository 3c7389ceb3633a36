"""The PyTorch paths on channels_last (NHWC) tensors against the reference ops.

The backbone runs channels_last inside on CPU, so LIF and norm_act see NHWC
memory there, and their CPU code is vectorised differently from the generic
path (mmsnnmlp/ops/lif.py: clamp_min/threshold instead of fmax/where, bit
selects in backward; norm_act.py: GELU on the NHWC view). Float64, odd sizes
(group tails), values and every gradient, with and without autograd.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from mmsnnmlp.ops import lif, lif_reference, norm_act
from mmsnnmlp.ops.norm_act import dense_view, gelu, gelu_, gelu_backward

CL = torch.channels_last


def _randn(shape, seed, layout=CL):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64).contiguous(memory_format=layout)


def _lif_run(x, grad, impl, group, dim, tau=0.3, vth=0.1):
    x = x.detach().clone().requires_grad_(True)
    tau_t = torch.tensor([tau], dtype=torch.float64, requires_grad=True)
    vth_t = torch.tensor([vth], dtype=torch.float64, requires_grad=True)
    if impl == 'reference':
        out = lif_reference(x, tau_t, vth_t, group, dim)
    else:
        out = lif(x, tau_t, vth_t, group, dim, impl)
    out.backward(grad)
    zero = torch.zeros(1, dtype=torch.float64)  # group 1: tau never acts (no grad in the reference)
    return out.detach(), x.grad, zero if tau_t.grad is None else tau_t.grad, vth_t.grad


@pytest.mark.parametrize('dim', [2, 3])
@pytest.mark.parametrize('group', [4, 3, 1, None])
@pytest.mark.parametrize('shape', [(2, 5, 7, 9), (1, 3, 11, 4)])
def test_lif_channels_last_matches_reference(shape, group, dim):
    x, grad = _randn(shape, 0), _randn(shape, 1)
    fast = _lif_run(x, grad, 'torch', group, dim)
    ref = _lif_run(x, grad, 'reference', group, dim)
    assert fast[0].is_contiguous(memory_format=CL) and fast[1].is_contiguous(memory_format=CL)
    for a, b, name in zip(fast, ref, ('out', 'dx', 'dtau', 'dvth')):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)
    with torch.no_grad():  # inference runs the same code without the library op
        assert torch.equal(lif(x, 0.3, 0.1, group, dim, 'torch'), fast[0])


@pytest.mark.parametrize('vth', [0.25, 0.0, -0.5, math.inf, -math.inf])
@pytest.mark.parametrize('dim', [2, 3])
def test_lif_special_values_exact(vth, dim):
    """NaN, infinities, signed zeros and ties with Vth (in both layouts): the
    vectorised CPU path, and the generic one it leaves non-finite Vth to,
    output exactly what the reference does."""
    vals = torch.tensor([math.nan, math.inf, -math.inf, 0.0, -0.0, 0.25, 0.125, -0.25, 1.0, 4.0,
                         0.5, -1.0], dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    x = vals[torch.randint(len(vals), (2, 3, 9, 10), generator=gen)]
    for layout in (CL, torch.contiguous_format):
        xl = x.contiguous(memory_format=layout)
        with torch.no_grad():
            out = lif(xl, 0.5, vth, 4, dim, 'torch')
            ref = lif_reference(xl, 0.5, vth, 4, dim)
        assert torch.equal(out.isnan(), ref.isnan())
        assert torch.equal(out.nan_to_num(nan=7.0), ref.nan_to_num(nan=7.0))


def test_lif_gradients_at_spikes_and_ties():
    """Inputs on a grid of sixteenths with tau 0.5 and Vth 0.25: exact ties
    and spikes everywhere, so every select in backward is exercised."""
    gen = torch.Generator().manual_seed(3)
    x = (torch.randint(-8, 9, (2, 4, 10, 9), generator=gen) / 16.0).double()
    grad = _randn(x.shape, 4)
    for dim in (2, 3):
        fast = _lif_run(x.contiguous(memory_format=CL), grad, 'torch', 4, dim, 0.5, 0.25)
        ref = _lif_run(x, grad, 'reference', 4, dim, 0.5, 0.25)
        for a, b in zip(fast, ref):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('affine', [True, False])
@pytest.mark.parametrize('act', [None, 'gelu'])
@pytest.mark.parametrize('impl', ['torch', 'auto'])
@pytest.mark.parametrize('shape', [(2, 5, 7, 9), (1, 16, 48, 45)])  # the second: GELU on the view
def test_norm_act_channels_last_matches_reference(shape, impl, act, affine):
    """'torch' is the fused op; 'auto' on CPU under autograd runs the unfused
    ops with GELU on the NHWC view, and without autograd the fused forward."""
    x, grad = _randn(shape, 5), _randn(shape, 6)
    w = (_randn(shape[1:2], 7, torch.contiguous_format) + 1).requires_grad_(affine)
    b = _randn(shape[1:2], 8, torch.contiguous_format).requires_grad_(affine)
    params = (w, b) if affine else (None, None)

    def run(fn):
        xg = x.detach().clone().requires_grad_(True)
        out = fn(xg)
        out.backward(grad)
        grads = [xg.grad] + ([w.grad.clone(), b.grad.clone()] if affine else [])
        if affine:
            w.grad, b.grad = None, None
        return [out.detach()] + grads

    fast = run(lambda t: norm_act(t, *params, 1e-5, act, impl))
    ref = run(lambda t: (F.gelu if act else (lambda y: y))(F.group_norm(t, 1, *params, 1e-5)))
    assert fast[0].is_contiguous(memory_format=CL) and fast[1].is_contiguous(memory_format=CL)
    for a, b_ in zip(fast, ref):
        torch.testing.assert_close(a, b_, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        out = norm_act(x, *params, 1e-5, act, impl)
    assert out.is_contiguous(memory_format=CL)
    torch.testing.assert_close(out, ref[0], rtol=1e-10, atol=1e-10)


def test_gelu_on_the_nhwc_view():
    """The GELU helpers compute on the NHWC view of a channels_last tensor
    (no copy) and give F.gelu's values in the input's layout."""
    x, grad = _randn((2, 64, 21, 13), 9), _randn((2, 64, 21, 13), 10)  # above DENSE_MIN_NUMEL
    view = dense_view(x)
    assert view.is_contiguous() and view.data_ptr() == x.data_ptr()
    nchw = x.contiguous()
    small = _randn((1, 4, 5, 3), 11)  # below DENSE_MIN_NUMEL: PyTorch's one-thread kernel
    assert dense_view(nchw) is nchw and dense_view(small) is small
    out = gelu(x)
    assert out.is_contiguous(memory_format=CL)
    torch.testing.assert_close(out, F.gelu(nchw), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(gelu_backward(grad, x),
                               torch.ops.aten.gelu_backward(grad.contiguous(), nchw))
    y = x.clone()
    assert gelu_(y) is y
    torch.testing.assert_close(y, F.gelu(nchw), rtol=1e-14, atol=1e-14)
    xg = x.detach().requires_grad_(True)
    gelu(xg).backward(grad)
    torch.testing.assert_close(xg.grad, torch.ops.aten.gelu_backward(grad, x))


@pytest.mark.parametrize('layout', [CL, torch.contiguous_format])
def test_lif_float32_rounds_as_the_reference(layout):
    """In float32 the CPU paths round each step's ``tau * o + x`` as the
    reference does (product, then sum; a fused multiply-add would differ in
    the last bit and flip spikes), so outputs equal bit for bit, and the
    recomputed spikes of the backward give dL/dx equal too."""
    gen = torch.Generator().manual_seed(5)
    x = (torch.randn(2, 8, 13, 21, generator=gen) * 3).contiguous(memory_format=layout)
    grad = torch.randn(x.shape, generator=gen).contiguous(memory_format=layout)
    for dim in (2, 3):
        xs = [x.clone().requires_grad_(True) for _ in range(2)]
        fast = lif(xs[0], 0.7, 0.3, 4, dim, 'torch')
        ref = lif_reference(xs[1], torch.tensor(0.7), torch.tensor(0.3), 4, dim)
        assert torch.equal(fast, ref), f'dim {dim}: {(fast != ref).sum()} values differ'
        fast.backward(grad)
        ref.backward(grad)
        assert torch.equal(xs[0].grad, xs[1].grad), f'dim {dim}: dL/dx differs'


@pytest.mark.parametrize('impl', ['auto', 'torch', 'reference'])
def test_norm_act_weight_grad_of_an_input_without_grad(impl):
    """A frozen stage's output (no gradient) entering a trained norm, on
    channels_last: torch 2.1-2.10 crash (segfault) in GroupNorm's CPU backward
    there unless the input asks for a gradient (``norm_act.group_norm``).
    The weight and bias gradients equal those of the NCHW computation."""
    x = _randn((2, 6, 5, 7), 3)
    grad = _randn(x.shape, 4)
    results = []
    for layout in (CL, torch.contiguous_format):
        w = torch.linspace(0.5, 1.5, 6, dtype=torch.float64).requires_grad_(True)
        b = torch.linspace(-0.2, 0.3, 6, dtype=torch.float64).requires_grad_(True)
        y = norm_act(x.contiguous(memory_format=layout), w, b, 1e-5, 'gelu', impl)
        y.backward(grad.contiguous(memory_format=layout))
        results.append((y.detach(), w.grad, b.grad))
    for a, b_, name in zip(*results, ('out', 'dw', 'db')):
        torch.testing.assert_close(a, b_, rtol=1e-12, atol=1e-12, msg=name)
