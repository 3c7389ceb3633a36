"""The LIF layer: its parameters (learned, frozen or fixed) and the
implementation it runs."""
import pytest
import torch

from mmsnnmlp.ops import LIF


@pytest.fixture
def interpret(monkeypatch):
    pytest.importorskip('triton')
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.delenv('MMSNNMLP_IMPL', raising=False)
    from mmsnnmlp.ops import triton_utils
    if not triton_utils.interpreting():  # this file also runs on the oldest stack
        pytest.skip("Triton's interpreter runs CPU tensors from triton 2.2")


def test_module_parameters_and_fixed_values():
    m = LIF(dim=2, group=4, init_tau=0.3, init_vth=0.2, learn_tau=False)
    names = dict(m.named_parameters())
    assert set(names) == {'tau', 'Vth'}
    assert names['tau'].shape == (1,) and names['Vth'].shape == (1,)
    assert not m.tau.requires_grad and m.Vth.requires_grad
    m(torch.randn(1, 1, 8, 3, requires_grad=True)).sum().backward()
    assert m.tau.grad is None and m.Vth.grad is not None
    assert m.tau.item() == pytest.approx(0.3) and m.Vth.item() == pytest.approx(0.2)


def test_module_runs_the_chosen_impl(interpret, monkeypatch):
    """LIF(impl='triton') reaches the kernel; LIF(impl='torch') does not."""
    from mmsnnmlp.ops import lif_triton
    calls = []
    forward = lif_triton.forward
    monkeypatch.setattr(lif_triton, 'forward', lambda *a: calls.append(a) or forward(*a))
    x = torch.randn(1, 2, 9, 7)
    out = LIF(dim=3, group=4, impl='triton')(x)
    assert len(calls) == 1
    assert torch.equal(out, LIF(dim=3, group=4, impl='torch')(x))
    assert len(calls) == 1
