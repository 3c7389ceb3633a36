import numpy as np
import pytest
import torch

from mmsnnmlp.ops import LIF, lif, lif_reference
from lif_scalar_reference import scalar_lif

GROUPS = [1, 2, 3, 4, 7, None]
SHAPES = [(2, 3, 13, 11), (1, 2, 50, 83), (2, 2, 1, 5), (1, 1, 5, 1)]


def _inputs(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.6
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    tau = 0.1 + 0.8 * torch.rand(1, generator=gen, dtype=torch.float64)
    vth = -0.2 + 0.6 * torch.rand(1, generator=gen, dtype=torch.float64)
    return x, g, tau, vth


def _seed(shape, group, dim):
    """A fixed seed per case (hash() of None differs between processes)."""
    return 100 * SHAPES.index(shape) + 10 * GROUPS.index(group) + dim


def _grad(t):
    return 0.0 if t.grad is None else t.grad.item()


@pytest.mark.parametrize('impl', [lif, lif_reference], ids=['fast', 'reference'])
@pytest.mark.parametrize('dim', [2, 3])
@pytest.mark.parametrize('group', GROUPS)
@pytest.mark.parametrize('shape', SHAPES)
def test_lif_matches_scalar_loop(impl, shape, group, dim):
    x, g, tau, vth = _inputs(shape, seed=_seed(shape, group, dim))
    ref_out, ref_dx, ref_dtau, ref_dvth = scalar_lif(
        x.numpy(), tau.item(), vth.item(), group, dim, grad_out=g.numpy())
    x.requires_grad_(True)
    tau.requires_grad_(True)
    vth.requires_grad_(True)
    out = impl(x, tau, vth, group=group, dim=dim)
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


def test_group_larger_than_axis_passes_everything_through():
    x = torch.randn(1, 2, 3, 5)
    assert torch.equal(lif(x, 0.25, 0.1, group=4, dim=2), x)
    # global spans the whole axis whatever its length
    assert not torch.equal(lif(x, 0.25, 0.1, group=None, dim=2), x)


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


def test_module_parameters_and_fixed_values():
    m = LIF(dim=2, group=4, init_tau=0.3, init_vth=0.2, learn_tau=False)
    names = dict(m.named_parameters())
    assert set(names) == {'tau', 'Vth'}
    assert names['tau'].shape == (1,) and names['Vth'].shape == (1,)
    assert not m.tau.requires_grad and m.Vth.requires_grad
    m(torch.randn(1, 1, 8, 3, requires_grad=True)).sum().backward()
    assert m.tau.grad is None and m.Vth.grad is not None
    assert m.tau.item() == pytest.approx(0.3) and m.Vth.item() == pytest.approx(0.2)


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
