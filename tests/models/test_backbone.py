import math

import pytest
import torch

from mmsnnmlp.models import SNNMLP

# backbone without head and final norm (the released models' counts less the head)
BACKBONE_PARAMS = {'tiny': 27_565_200, 'small': 48_932_544, 'base': 86_870_240}
EMBED = {'tiny': 96, 'small': 96, 'base': 128}


def _tiny_arch(**kwargs):
    return SNNMLP(arch=dict(embed_dims=8, depths=(1, 1, 2, 1)), drop_path_rate=0.0, **kwargs)


@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
def test_parameter_counts(arch):
    model = SNNMLP(arch)
    total = sum(p.numel() for p in model.parameters())
    c = EMBED[arch]
    output_norms = 2 * (c + 2 * c + 4 * c + 8 * c)
    assert total == BACKBONE_PARAMS[arch] + output_norms


def test_aliases_and_dict_arch():
    assert SNNMLP('t').depths == SNNMLP('tiny').depths == (2, 2, 6, 2)
    assert SNNMLP('S').depths == (2, 2, 18, 2)
    m = SNNMLP(dict(embed_dims=16, depths=[1, 1, 1, 1]))
    assert m.num_features == [16, 32, 64, 128]


@pytest.mark.parametrize('hw', [(224, 224), (800, 1333), (33, 65), (1, 1), (17, 900)])
def test_output_shapes(hw):
    model = SNNMLP('tiny').eval() if hw == (800, 1333) else _tiny_arch().eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *hw))
    h, w = math.ceil(hw[0] / 4), math.ceil(hw[1] / 4)
    expected = []
    for i, c in enumerate(model.num_features):
        expected.append((1, c, h, w))
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    assert [tuple(o.shape) for o in outs] == expected
    assert all(torch.isfinite(o).all() for o in outs)


def test_out_indices_subset_and_output_norms():
    model = _tiny_arch(out_indices=(1, 3)).eval()
    outs = model(torch.randn(2, 3, 64, 48))
    assert [o.shape[1] for o in outs] == [16, 64]
    assert set(model.out_norms) == {'1', '3'}
    # each output is normalised over (C, H, W) per sample
    for o in outs:
        flat = o.flatten(1)
        torch.testing.assert_close(flat.mean(1), torch.zeros(2), atol=1e-5, rtol=0)


def test_frozen_stages_are_frozen():
    model = _tiny_arch(frozen_stages=2)
    model.train()
    frozen = [model.patch_embed, model.layers[0], model.layers[1], model.out_norms['0'],
              model.out_norms['1']]
    for m in frozen:
        assert not m.training
        assert not any(p.requires_grad for p in m.parameters())
    assert model.layers[2].training and all(p.requires_grad for p in model.layers[2].parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    # a plain sum of normalised outputs has zero gradient: weight it randomly
    sum((o * torch.randn_like(o)).sum() for o in model(torch.randn(1, 3, 64, 64))).backward()
    opt.step()
    after = model.state_dict()
    for name in before:
        changed = not torch.equal(before[name], after[name])
        is_frozen = name.startswith(('patch_embed', 'layers.0.', 'layers.1.', 'out_norms.0',
                                     'out_norms.1'))
        if is_frozen:
            assert not changed, name
    assert not torch.equal(before['layers.2.blocks.0.mlp.fc1.weight'],
                           after['layers.2.blocks.0.mlp.fc1.weight'])


def test_norm_eval_is_a_documented_no_op_and_train_returns_self():
    """GroupNorm has no running statistics: norm_eval (accepted for mmdet
    config compatibility) changes nothing, in train or eval mode."""
    torch.manual_seed(0)
    plain, with_flag = _tiny_arch(), _tiny_arch(norm_eval=True)
    with_flag.load_state_dict(plain.state_dict())
    assert plain.train() is plain and with_flag.eval() is with_flag
    x = torch.randn(2, 3, 40, 24)
    for mode in (True, False):
        plain.train(mode)
        with_flag.train(mode)
        for a, b in zip(plain(x), with_flag(x)):
            assert torch.equal(a, b)
    # a GroupNorm computes the same in both modes
    plain.train()
    train_out = plain(x)
    plain.eval()
    for a, b in zip(train_out, plain(x)):
        assert torch.equal(a, b)


def test_with_cp_same_outputs_and_gradients():
    torch.manual_seed(0)
    ref = _tiny_arch()
    ckp = _tiny_arch(with_cp=True)
    ckp.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 40, 56)
    weights = [torch.randn_like(o) for o in ref(x)]
    grads = []
    for model in (ref, ckp):
        model.train()
        model.zero_grad()
        xi = x.clone().requires_grad_(True)
        outs = model(xi)
        sum((o * w).sum() for o, w in zip(outs, weights)).backward()
        grads.append((outs, xi.grad, {n: p.grad.clone() for n, p in model.named_parameters()}))
    for a, b in zip(grads[0][0], grads[1][0]):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(grads[0][1], grads[1][1])
    for name, g in grads[0][2].items():
        torch.testing.assert_close(g, grads[1][2][name], msg=name)
    assert grads[0][2]['layers.0.blocks.0.lif_module.lif1.tau'].abs().sum() > 0


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='huge'), r"Unknown SNNMLP arch 'huge'; valid: \['base', 'small', 'tiny'"),
    (dict(arch=dict(embed_dims=96)), 'embed_dims.*depths'),
    (dict(lif_group=0), 'lif_group'),
    (dict(lif_group=2.5), 'lif_group'),
    (dict(out_indices=(0, 4)), 'out_indices'),
    (dict(out_indices=()), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
    (dict(frozen_stages=-2), 'frozen_stages'),
    (dict(drop_path_rate=1.0), 'drop_path_rate'),
    (dict(init_cfg=dict(type='Pretrained')), 'checkpoint'),
    (dict(out_indices=(1, 1, 3)), 'names a stage twice'),
    (dict(out_indices=(3, -1)), 'names a stage twice'),
    (dict(lif_tau=float('nan')), 'lif_tau must be a finite number'),
    (dict(lif_vth=float('inf')), 'lif_vth must be a finite number'),
    (dict(lif_vth='0.1'), 'lif_vth must be a finite number'),
    (dict(patch_size=0), 'patch_size must be a positive int'),
    (dict(patch_size=2.5), 'patch_size must be a positive int'),
    (dict(in_channels=-3), 'in_channels must be a positive int'),
    (dict(mlp_ratio=0), 'mlp_ratio must be a positive number'),
    (dict(mlp_ratio=float('nan')), 'mlp_ratio must be a positive number'),
])
def test_bad_config_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SNNMLP(**kwargs)


@pytest.mark.parametrize('tau', [-1.0, 1.5])
def test_tau_outside_unit_interval_warns(tau):
    with pytest.warns(UserWarning, match=f'lif_tau={tau} is outside'):
        model = _tiny_arch(lif_tau=tau)
    assert model.layers[0].blocks[0].lif_module.lif1.tau.item() == tau


def test_wrong_channel_count():
    model = _tiny_arch()
    with pytest.raises(ValueError, match=r'expects input of shape \(N, 3, H, W\), got \(1, 1, 32, 32\)'):
        model(torch.randn(1, 1, 32, 32))
    gray = _tiny_arch(in_channels=1)
    assert len(gray(torch.randn(1, 1, 32, 32))) == 4


def test_global_lif_group():
    model = _tiny_arch(lif_group=None)
    assert model.layers[0].blocks[0].lif_module.lif1.group is None
    assert len(model(torch.randn(1, 3, 30, 30))) == 4


def _blocks(model):
    return [block for stage in model.layers for block in stage.blocks]


@pytest.mark.parametrize('with_cp', [False, True])
def test_with_cp_recomputes_each_block_in_backward(with_cp):
    """Activation checkpointing drops a block's activations in forward and runs
    the block again during backward; without it nothing runs twice."""
    model = _tiny_arch(with_cp=with_cp).train()
    calls = []
    for i, block in enumerate(_blocks(model)):
        block.lif_module.register_forward_pre_hook(lambda *_, i=i: calls.append(i))
    outs = model(torch.randn(1, 3, 32, 32))
    n = len(_blocks(model))
    assert calls == list(range(n))
    calls.clear()
    sum((o * torch.randn_like(o)).sum() for o in outs).backward()
    assert sorted(calls) == (list(range(n)) if with_cp else [])
    # inference (no autograd graph) never checkpoints
    calls.clear()
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    assert calls == list(range(n))


def test_drop_path_keeps_the_expectation():
    """Whole samples are dropped with probability p; survivors are scaled by
    exactly 1/(1-p), so the mean is preserved. Large sample, fixed seed."""
    from mmsnnmlp.models.layers import DropPath
    torch.manual_seed(3)
    n = 200_000
    x = torch.full((n, 2, 1, 3), 1.5)
    for prob in (0.3, 0.5):
        y = DropPath(prob).train()(x)
        flat = y.flatten(1)
        dropped, kept = flat.eq(0).all(1), flat.ne(0).all(1)
        assert bool((dropped | kept).all())  # per sample, not per element
        torch.testing.assert_close(y[kept], x[kept] / (1 - prob), rtol=1e-6, atol=0)
        # std of the drop fraction is sqrt(p(1-p)/n) ~ 0.001: 10 sigma
        assert dropped.float().mean().item() == pytest.approx(prob, abs=0.01)
        assert y.mean().item() == pytest.approx(1.5, rel=0.02)
    assert torch.equal(y[kept], torch.full_like(y[kept], 3.0))  # p = 0.5: exactly 2x
    assert torch.equal(DropPath(0.3).eval()(x), x)
    assert torch.equal(DropPath(0.0).train()(x), x)


@pytest.mark.parametrize('depths, rate', [((2, 2, 6, 2), 0.2), ((2, 2, 18, 2), 0.3),
                                          ((1, 2, 1), 0.5), ((1,), 0.4)])
def test_drop_path_rate_grows_linearly_over_all_blocks(depths, rate):
    """Block i of n (counted across stages) drops with rate * i / (n - 1): 0 for
    the first block, the full rate for the last (Swin's linspace(0, rate, n))."""
    model = SNNMLP(dict(embed_dims=8, depths=depths), drop_path_rate=rate,
                   out_indices=(len(depths) - 1,))
    probs = [block.drop_path.prob for block in _blocks(model)]
    n = sum(depths)
    expected = torch.linspace(0, rate, n).tolist() if n > 1 else [0.0]
    assert probs == pytest.approx(expected, abs=1e-7)
    assert probs[0] == 0.0


def _lif_modules(model):
    from mmsnnmlp.ops import LIF
    return [m for m in model.modules() if isinstance(m, LIF)]


@pytest.mark.parametrize('tau, vth', [(0.25, 0.25), (0.375, 0.125), (0.1, 0.6)])
def test_lif_initial_tau_and_vth_per_neuron(tau, vth):
    kwargs = {} if (tau, vth) == (0.25, 0.25) else dict(lif_tau=tau, lif_vth=vth)
    model = _tiny_arch(**kwargs)  # default: the paper's best, 0.25 / 0.25
    lifs = _lif_modules(model)
    assert len(lifs) == 2 * len(_blocks(model))
    for m in lifs:
        assert m.tau.item() == pytest.approx(tau) and m.Vth.item() == pytest.approx(vth)


@pytest.mark.parametrize('learn_tau, learn_vth', [(True, True), (False, True), (True, False),
                                                  (False, False)])
def test_learn_tau_and_vth_flags(learn_tau, learn_vth):
    model = _tiny_arch(learn_tau=learn_tau, learn_vth=learn_vth).train()
    lifs = _lif_modules(model)
    assert all(m.tau.requires_grad == learn_tau and m.Vth.requires_grad == learn_vth
               for m in lifs)
    before = [(m.tau.clone(), m.Vth.clone()) for m in lifs]
    # a user who hands every parameter to the optimizer (weight decay too)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.05)
    outs = model(torch.randn(2, 3, 48, 40))
    sum((o * torch.randn_like(o)).sum() for o in outs).backward()
    opt.step()
    for m, (tau, vth) in zip(lifs, before):
        assert torch.equal(m.tau, tau) != learn_tau
        assert torch.equal(m.Vth, vth) != learn_vth
