"""Exact LIF semantics pinned in every implementation, and reduced precision
against the float64 scalar loop.

The spike is strict, ``u > Vth`` (see mmsnnmlp/ops/lif.py): at the tie ``u == Vth`` the
neuron does not fire, outputs Vth and carries its potential. The values below
are exactly representable in every float dtype (tau 0.5, Vth 0.25, inputs in
sixteenths), so the tie really is a tie and the expected numbers are exact.

IMPLEMENTATIONS is the one place that says how each implementation is called.
"""
import numpy as np
import pytest
import torch

from helpers.lif_scalar_reference import scalar_lif
from mmsnnmlp.ops import lif, lif_reference


def _fast(x, tau, vth, group, dim):
    return lif(x, tau, vth, group=group, dim=dim, impl='torch')


def _reference(x, tau, vth, group, dim):
    return lif_reference(x, tau, vth, group=group, dim=dim)


def _triton(x, tau, vth, group, dim):
    pytest.importorskip('triton')
    return lif(x, tau, vth, group=group, dim=dim, impl='triton')


# name -> (callable, dtypes it is checked in)
IMPLEMENTATIONS = {
    'reference': (_reference, (torch.float32, torch.float64)),
    'fast': (_fast, (torch.float16, torch.bfloat16, torch.float32, torch.float64)),
    'triton': (_triton, (torch.float16, torch.bfloat16, torch.float32, torch.float64)),
}
CASES_BY_IMPL = [(name, dtype) for name, (_, dtypes) in IMPLEMENTATIONS.items()
                 for dtype in dtypes]


@pytest.fixture(autouse=True)
def triton_interpreter(monkeypatch):
    """Triton runs on CPU tensors through its interpreter (only the Triton
    implementation looks at this)."""
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.delenv('MMSNNMLP_IMPL', raising=False)


TAU, VTH = 0.5, 0.25
# One line along the LIF axis: (group, x, grad_out, out, dL/dx, dL/dtau, dL/dVth),
# worked out by hand from the recurrence.
TIE_CASES = {
    # u0 = 0.25 == Vth: no spike, out Vth, carry 0.25;
    # u1 = 0.5 * 0.25 + 0.1875 = 0.3125 fires (it would not after a reset).
    'tie_first': (2, [0.25, 0.1875], [1.0, 2.0],
                  [0.25, 0.3125], [1.0, 2.0], 0.5, 1.0),
    # u0 = 0.125 (carried), u1 = 0.0625 + 0.1875 = 0.25 == Vth: no spike, carry
    # 0.25; u2 = 0.125 + 0.1875 = 0.3125 fires.
    # du2/dtau = o2 + tau * du1/dtau = 0.25 + 0.5 * 0.125.
    'tie_carried': (3, [0.125, 0.1875, 0.1875], [3.0, 5.0, 4.0],
                    [0.25, 0.25, 0.3125], [1.0, 2.0, 4.0], 1.25, 8.0),
    # u0 = 0.375 fires and resets; u1 = 0.25 == Vth at the group's end: no
    # spike, so its gradient goes to Vth, not x; the tail row passes through.
    'tie_last': (2, [0.375, 0.25, 0.25], [1.0, 2.0, 7.0],
                 [0.375, 0.25, 0.25], [1.0, 0.0, 7.0], 0.0, 2.0),
}
COLUMNS, CHANNELS = 3, 2  # the line is repeated: sums over 6 identical lines


def _planes(values, dim, dtype):
    """NCHW tensor holding ``values`` along H (dim=2) or W (dim=3) everywhere."""
    line = torch.tensor(values, dtype=torch.float64)
    t = line.view(1, 1, -1, 1).expand(1, CHANNELS, -1, COLUMNS)
    if dim == 3:
        t = t.transpose(2, 3)
    return t.contiguous().to(dtype)


def _params(dtype):
    pdtype = torch.float64 if dtype == torch.float64 else torch.float32
    return (torch.tensor([TAU], dtype=pdtype, requires_grad=True),
            torch.tensor([VTH], dtype=pdtype, requires_grad=True))


@pytest.mark.parametrize('case', sorted(TIE_CASES))
@pytest.mark.parametrize('dim', [2, 3])
@pytest.mark.parametrize('impl, dtype', CASES_BY_IMPL,
                         ids=[f'{n}-{str(d)[6:]}' for n, d in CASES_BY_IMPL])
def test_tie_does_not_fire(impl, dtype, dim, case):
    group, xs, gs, out_exp, dx_exp, dtau_exp, dvth_exp = TIE_CASES[case]
    fn = IMPLEMENTATIONS[impl][0]
    x = _planes(xs, dim, dtype).requires_grad_(True)
    g = _planes(gs, dim, dtype)
    tau, vth = _params(dtype)
    out = fn(x, tau, vth, group, dim)
    (out * g).sum().backward()
    assert out.dtype == dtype
    assert torch.equal(out.detach(), _planes(out_exp, dim, dtype))
    assert torch.equal(x.grad, _planes(dx_exp, dim, dtype))
    lines = COLUMNS * CHANNELS
    assert tau.grad is not None and vth.grad is not None
    assert tau.grad.item() == dtau_exp * lines
    assert vth.grad.item() == dvth_exp * lines


@pytest.mark.parametrize('dim', [2, 3])
@pytest.mark.parametrize('impl, dtype', CASES_BY_IMPL,
                         ids=[f'{n}-{str(d)[6:]}' for n, d in CASES_BY_IMPL])
def test_tie_does_not_fire_beside_nan_and_inf(impl, dtype, dim):
    """Non-finite values elsewhere in the tensor (the fast path then takes its
    NaN-exact formulation) change nothing about the tie."""
    fn = IMPLEMENTATIONS[impl][0]
    group, xs, _, out_exp, *_ = TIE_CASES['tie_carried']
    x = torch.cat([_planes(xs, dim, dtype), _planes([float('nan'), 1.0, float('inf')], dim,
                                                    dtype)], 1)
    tau, vth = _params(dtype)
    with torch.no_grad():
        out = fn(x, tau, vth, group, dim)
    assert torch.equal(out[:, :CHANNELS], _planes(out_exp, dim, dtype))
    # NaN never fires and poisons the carried potential: Vth to the group's end
    assert torch.equal(out[:, CHANNELS:], torch.full_like(out[:, CHANNELS:], VTH))


# -- reduced precision against the float64 scalar loop ---------------------
@pytest.mark.parametrize('dim', [2, 3])
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=['fp16', 'bf16'])
@pytest.mark.parametrize('impl', ['fast', 'triton'])
def test_reduced_precision_matches_scalar_loop(impl, dtype, dim):
    """fp16/bf16 inputs, float32 tau/Vth (module parameters): the scalar loop
    gets the same rounded inputs in float64; outputs and dL/dx may differ from
    it only by the output dtype's rounding, dL/dtau and dL/dVth (float32 sums)
    by float32 accumulation."""
    fn = IMPLEMENTATIONS[impl][0]
    gen = torch.Generator().manual_seed(21 + dim)
    shape = (2, 3, 13, 14)  # 13 rows: a tail along H with group 4
    x = (torch.randn(shape, generator=gen) * 0.6).to(dtype).requires_grad_(True)
    g = torch.randn(shape, generator=gen).to(dtype)
    tau = torch.tensor([0.37], requires_grad=True)
    vth = torch.tensor([0.11], requires_grad=True)
    out = fn(x, tau, vth, 4, dim)
    (out.float() * g.float()).sum().backward()
    ref_out, ref_dx, ref_dtau, ref_dvth = scalar_lif(
        x.detach().double().numpy(), tau.item(), vth.item(), 4, dim,
        grad_out=g.double().numpy())
    assert out.dtype == x.grad.dtype == dtype
    eps = torch.finfo(dtype).eps  # one unit in the last place, relative
    np.testing.assert_allclose(out.detach().double().numpy(), ref_out, rtol=eps, atol=1e-6)
    np.testing.assert_allclose(x.grad.double().numpy(), ref_dx, rtol=eps, atol=1e-6)
    scale = np.abs(g.double().numpy()).sum()  # bound of float32 summation error
    np.testing.assert_allclose(tau.grad.item(), ref_dtau, rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(vth.grad.item(), ref_dvth, rtol=0, atol=1e-6 * scale)
    # a check that can fail: both spike states occur
    assert (ref_out > vth.item()).any() and (ref_out == np.float32(vth.item())).any()
