"""The backbone runs channels_last (NHWC) inside on CPU, whatever the input's
format, and takes in-place shortcuts in inference (mmsnnmlp/models/layers.py).

Float64, toy widths, odd input sizes (padding at the patch embedding and at
every merging): outputs and gradients equal those of the plain NCHW run, the
outputs come back in the input's format, no layer sees NCHW memory inside,
and neither the parameters (state dict, strides) nor the input change.
"""
import copy

import pytest
import torch
from torch import nn

from mmsnnmlp.models import SNNMLP, layers
from mmsnnmlp.ops import LIF, NormAct

CL = torch.channels_last


def _model(**kwargs):
    torch.manual_seed(0)
    model = SNNMLP(arch=dict(embed_dims=8, depths=(1, 1, 2, 1)), drop_path_rate=0.0, **kwargs)
    model.init_weights()
    return model.double()


def _input(layout=torch.contiguous_format, shape=(1, 3, 45, 29)):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(shape, generator=gen, dtype=torch.float64).contiguous(memory_format=layout)


def _outputs_and_grads(model, x):
    model.zero_grad(set_to_none=True)
    outs = model(x)
    gen = torch.Generator().manual_seed(2)
    sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum() for o in outs).backward()
    return [o.detach() for o in outs], {n: p.grad.clone() for n, p in model.named_parameters()
                                        if p.grad is not None}


def _close(a, b, tol=1e-10):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=tol, atol=tol)


@pytest.mark.parametrize('layout', [torch.contiguous_format, CL])
def test_inside_layout_equals_nchw_and_outputs_keep_the_input_format(layout):
    plain, inside = _model(channels_last=False), _model()
    x = _input(layout)
    outs, grads = _outputs_and_grads(inside, x)
    ref_outs, ref_grads = _outputs_and_grads(plain, x.contiguous())
    _close(outs, ref_outs)
    assert grads.keys() == ref_grads.keys()
    _close([grads[k] for k in grads], [ref_grads[k] for k in grads])
    if layout is CL:  # as the input came: channels_last
        assert all(o.is_contiguous(memory_format=CL) for o in outs)
    else:
        assert all(o.is_contiguous() for o in outs)


def test_every_layer_sees_channels_last_memory():
    """The conversion happens once, at the entry: every convolution, norm and
    LIF inside gets NHWC memory (no layer switches layouts), unless turned off."""
    for mode, expect in (('auto', True), (False, False)):
        model, seen = _model(channels_last=mode).eval(), []
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, NormAct, LIF)) and m is not model.patch_embed.proj:
                m.register_forward_pre_hook(
                    lambda _, args: seen.append(args[0].is_contiguous(memory_format=CL)))
        with torch.no_grad():
            model(_input())
        assert seen and all(s is expect for s in seen), mode


@pytest.fixture
def one_thread():
    """The tiled 1x1 convolutions run with one thread only."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('threads', ['default', 'one'])
def test_inference_shortcuts_give_the_training_path_values(threads, request, monkeypatch):
    """Eval without autograd (in-place GELUs and adds, the ops without their
    library wrappers; with one thread, the MLP and the mixer's branches by
    tiles, here of 7 positions: a short last tile) against eval under
    autograd (the plain modules)."""
    if threads == 'one':
        request.getfixturevalue('one_thread')
        monkeypatch.setattr(layers, 'TILE_ROWS', 7)
        tiled = []  # whether each call computed by tiles
        for name in ('mlp_tiled', 'branches_tiled'):
            def counted(*args, _fn=getattr(layers, name)):
                out = _fn(*args)
                tiled.append(out is not None)
                return out
            monkeypatch.setattr(layers, name, counted)
    model, x = _model().eval(), _input()
    before = x.clone()
    with torch.no_grad():
        fast = model(x)
    if threads == 'one':
        assert tiled == [True] * (2 * sum(model.depths))  # every block's MLP and branches
    assert torch.equal(x, before)  # the caller's input is never written
    slow = model(x.requires_grad_(True))
    _close(fast, [o.detach() for o in slow], 1e-12)
    with torch.inference_mode():
        _close(model(before), fast, 1e-12)


def test_parameters_and_state_dict_untouched():
    """Nothing converts parameters: keys, values and strides stay as built,
    through forward, deepcopy and load_state_dict."""
    model = _model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    strides = {k: v.stride() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.eval()(_input())
    model.train()(_input())[0].sum().backward()
    clone = copy.deepcopy(model)
    clone.load_state_dict(model.state_dict())
    for m in (model, clone):
        sd = m.state_dict()
        assert sd.keys() == state.keys()
        assert all(torch.equal(sd[k], state[k]) and sd[k].stride() == strides[k] for k in sd)


def test_channels_last_option_is_checked():
    with pytest.raises(ValueError, match='channels_last'):
        SNNMLP(arch=dict(embed_dims=8, depths=(1, 1, 1, 1)), channels_last='yes')
