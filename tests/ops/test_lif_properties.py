"""Property tests of LIF: odd shapes, every group size, both directions, NaN/Inf."""
import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsnnmlp.ops import lif, lif_reference
from helpers.lif_scalar_reference import scalar_lif

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def lif_case(draw):
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 3))
    h = draw(st.integers(1, 80))
    w = draw(st.integers(1, 80))
    dim = draw(st.sampled_from([2, 3]))
    length = h if dim == 2 else w
    group = draw(st.one_of(st.none(), st.integers(1, length + 2)))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    seed = draw(st.integers(0, 2**31 - 1))
    return (n, c, h, w), dim, group, dtype, seed


@FAST
@given(lif_case())
def test_lif_fast_equals_reference(case):
    shape, dim, group, dtype, seed = case
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen) * 0.7).to(dtype).requires_grad_(True)
    g = torch.randn(shape, generator=gen).to(dtype)
    tau = torch.tensor([0.3], dtype=dtype, requires_grad=True)
    vth = torch.tensor([0.05], dtype=dtype, requires_grad=True)
    out = lif(x, tau, vth, group=group, dim=dim)
    assert out.shape == x.shape and out.dtype == dtype
    grads = torch.autograd.grad((out * g).sum(), (x, tau, vth))
    x2, t2, v2 = (t.detach().clone().requires_grad_(True) for t in (x, tau, vth))
    ref = lif_reference(x2, t2, v2, group=group, dim=dim)
    ref_grads = torch.autograd.grad((ref * g).sum(), (x2, t2, v2), allow_unused=True)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out, ref, **tol)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, torch.zeros_like(a) if b is None else b,
                                   rtol=tol['rtol'] * 100, atol=tol['atol'] * 100)


@settings(max_examples=15, deadline=None)
@given(lif_case())
def test_lif_matches_scalar_loop_on_small_cases(case):
    (n, c, h, w), dim, group, _, seed = case
    shape = (1, 1, min(h, 12), min(w, 12))
    length = shape[dim]
    group = None if group is None else min(group, length + 1)
    x = np.random.default_rng(seed).normal(0, 0.7, shape)
    out = lif(torch.from_numpy(x), 0.4, 0.1, group=group, dim=dim).numpy()
    np.testing.assert_allclose(out, scalar_lif(x, 0.4, 0.1, group, dim), rtol=1e-12, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([None, 1, 2, 3, 4, 7]),
       st.sampled_from([2, 3]), st.integers(0, 2**31 - 1))
def test_nan_and_inf_propagate(h, w, group, dim, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 2, h, w, dtype=torch.float64, generator=gen)
    x[0, 0, h // 2, w // 2] = float('nan')
    x[0, 1, 0, 0] = float('inf')
    out = lif(x, 0.25, 0.1, group=group, dim=dim)
    ref = lif_reference(x, 0.25, 0.1, group=group, dim=dim)
    assert out.shape == x.shape
    # same finite/non-finite pattern and values as the reference; no crash
    torch.testing.assert_close(out, ref, equal_nan=True)
    assert not torch.isfinite(out).all()
