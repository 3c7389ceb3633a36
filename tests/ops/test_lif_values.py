"""LIF values and gradients of the PyTorch path and the reference against the
float64 scalar loop, and edge values: NaN and Inf, axes shorter than a group,
reduced precision, bad arguments."""
import numpy as np
import pytest
import torch

from mmsnnmlp.ops import lif, lif_reference
from helpers.lif_scalar_reference import scalar_lif

GROUPS = [1, 2, 3, 4, 7, None]
SHAPES = [(2, 3, 13, 11), (1, 2, 50, 83), (2, 2, 1, 5), (1, 1, 5, 1)]


def _inputs(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.6
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    tau = 0.1 + 0.8 * torch.rand(1, generator=gen, dtype=torch.float64)
    vth = -0.2 + 0.6 * torch.rand(1, generator=gen, dtype=torch.float64)
    return x, g, tau, vth


def _grad(t):
    return 0.0 if t.grad is None else t.grad.item()


CASES = [(shape, group, dim) for shape in SHAPES for group in GROUPS for dim in (2, 3)]


@pytest.mark.parametrize('impl', ['torch', 'reference'])
@pytest.mark.parametrize('seed, case', list(enumerate(CASES)))
def test_lif_matches_scalar_loop(impl, seed, case):
    shape, group, dim = case
    x, g, tau, vth = _inputs(shape, seed=seed)
    ref_out, ref_dx, ref_dtau, ref_dvth = scalar_lif(
        x.numpy(), tau.item(), vth.item(), group, dim, grad_out=g.numpy())
    x.requires_grad_(True)
    tau.requires_grad_(True)
    vth.requires_grad_(True)
    out = lif(x, tau, vth, group=group, dim=dim, impl=impl)
    (out * g).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), ref_dx, rtol=1e-12, atol=1e-12)
    # autograd leaves None where a parameter never acts (1-row groups, all tail)
    np.testing.assert_allclose(_grad(tau), ref_dtau, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(_grad(vth), ref_dvth, rtol=1e-10, atol=1e-10)


def test_scalar_reference_is_sensitive():
    """The oracle itself must tell firing from non-firing and tails from groups."""
    x = np.array([0.5, 0.05, 0.3, 0.0, 9.0], dtype=np.float64).reshape(1, 1, 5, 1)
    out = scalar_lif(x, 0.5, 0.1, 2, 2)
    # group (0.5, 0.05): fires then resets -> 0.5, Vth; group (0.3, 0.0): fires
    # then resets -> 0.3, Vth; the tail row 9.0 passes through.
    np.testing.assert_allclose(out.ravel(), [0.5, 0.1, 0.3, 0.1, 9.0])
    x2 = np.array([0.06, 0.1], dtype=np.float64).reshape(1, 1, 1, 2)
    # 0.06 does not fire (-> Vth) and carries: u = 0.5*0.06 + 0.1 = 0.13 fires.
    np.testing.assert_allclose(scalar_lif(x2, 0.5, 0.1, 2, 3).ravel(), [0.1, 0.13])


@pytest.mark.parametrize('dim', [2, 3])
def test_torch_path_matches_reference_on_nan_and_inf(dim):
    """NaN and +-Inf in the input (and hence in u) follow the reference's
    ``where`` semantics: no finite-only shortcut in the PyTorch path."""
    gen = torch.Generator().manual_seed(21)
    x = torch.randn(2, 3, 12, 12, generator=gen)
    specials = torch.tensor([float('nan'), float('inf'), -float('inf')])
    pick = torch.randint(0, 12, (2, 3, 12, 12), generator=gen)
    x = torch.where(pick < 3, specials[pick.clamp(max=2)], x)
    for group in (2, 4, None):
        out = lif(x, 0.5, 0.1, group=group, dim=dim, impl='torch')
        ref = lif_reference(x, 0.5, 0.1, group=group, dim=dim)
        torch.testing.assert_close(out, ref, rtol=0, atol=0, equal_nan=True)


def test_group_larger_than_axis_passes_everything_through():
    x = torch.randn(1, 2, 3, 5)
    assert torch.equal(lif(x, 0.25, 0.1, group=4, dim=2), x)
    # global spans the whole axis whatever its length
    assert not torch.equal(lif(x, 0.25, 0.1, group=None, dim=2), x)


@pytest.mark.parametrize('impl', ['torch', 'reference'])
def test_unprocessed_axis_still_gives_zero_parameter_gradients(impl):
    # None instead of zero would make AdamW skip tau/Vth on one path only
    # (stage 4 of small inputs), so compiled and eager training would differ.
    x = torch.tensor([-0.0, 1.0, float('nan'), float('-inf')]).repeat(1, 1, 3, 1)
    tau = torch.tensor([0.25], requires_grad=True)
    vth = torch.tensor([0.1], requires_grad=True)
    out = lif(x, tau, vth, group=4, dim=2, impl=impl)
    assert torch.equal(torch.signbit(out), torch.signbit(x))
    torch.testing.assert_close(out, x, rtol=0, atol=0, equal_nan=True)
    out.sum().backward()
    assert tau.grad is not None and vth.grad is not None
    assert tau.grad.item() == 0.0 and vth.grad.item() == 0.0


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16])
def test_reduced_precision_matches_float64(dtype):
    x, g, tau, vth = _inputs((2, 4, 9, 14), seed=3)
    xs = x.to(dtype).requires_grad_(True)
    taus, vths = tau.float().requires_grad_(True), vth.float().requires_grad_(True)
    out = lif(xs, taus, vths, group=4, dim=3)
    assert out.dtype == dtype
    (out.float() * g.to(dtype).float()).sum().backward()
    x64 = xs.detach().double().requires_grad_(True)
    t64, v64 = taus.detach().double().requires_grad_(True), vths.detach().double().requires_grad_(True)
    ref = lif_reference(x64, t64, v64, group=4, dim=3)
    (ref * g.to(dtype).double()).sum().backward()
    tol = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}[dtype]
    torch.testing.assert_close(out.double(), ref.detach(), rtol=tol, atol=tol)
    torch.testing.assert_close(xs.grad.double(), x64.grad, rtol=tol, atol=tol)
    torch.testing.assert_close(taus.grad.double(), t64.grad, rtol=tol * 10, atol=tol * 10)
    torch.testing.assert_close(vths.grad.double(), v64.grad, rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize('kwargs, message', [
    (dict(group=0), 'group'),
    (dict(group=-2), 'group'),
    (dict(dim=1), 'dim'),
])
def test_bad_arguments(kwargs, message):
    args = dict(group=4, dim=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        lif(torch.randn(1, 1, 4, 4), 0.25, 0.25, **args)
    with pytest.raises(ValueError, match='NCHW'):
        lif(torch.randn(4, 4), 0.25, 0.25)
    with pytest.raises(ValueError, match='impl must be one of'):
        lif(torch.randn(1, 1, 4, 4), 0.25, 0.25, impl='cuda')
