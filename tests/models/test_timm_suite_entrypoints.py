"""The timm classifiers through the entry points timm's own model tests drive:
factory ``device``/``dtype`` kwargs and the meta device, TorchScript, torch.fx
(timm's feature extraction and plain symbolic tracing), ``forward_intermediates``
and ``features_only``."""
import pytest
import timm
import torch
from timm.models import (FeatureGraphNet, create_feature_extractor, get_notrace_functions,
                         get_notrace_modules)


TOY = dict(embed_dim=8, depths=(1, 1, 2, 1))
# the ablation options that change the layers' code paths
OPTIONS = [dict(), dict(lif_group=None), dict(lif_group=-1), dict(dwconv=False),
           dict(lif_fix_tau=True, lif_fix_vth=True), dict(lif_placement='after_stage'),
           dict(lif_placement='replace_gelu'), dict(token_mixer='none'),
           dict(token_mixer='axial_shift', dwconv=False)]

pytestmark = pytest.mark.usefixtures('one_thread', 'timm_registered')  # tests/conftest.py


def _tracer_kwargs():
    # what timm's fx feature extraction traces with
    return dict(leaf_modules=get_notrace_modules(), autowrap_functions=get_notrace_functions())


def _fx_model(model, train=False):
    """The whole model as an fx graph, as timm's fx tests build it."""
    from torchvision.models import feature_extraction as tv
    train_nodes, eval_nodes = tv.get_graph_node_names(model, tracer_kwargs=_tracer_kwargs())
    return tv.create_feature_extractor(model, train_return_nodes=[train_nodes[-1]],
                                       eval_return_nodes=[eval_nodes[-1]],
                                       tracer_kwargs=_tracer_kwargs())


@pytest.mark.parametrize('name', ['snnmlp_tiny', 'snnmlp_small', 'snnmlp_base'])
def test_meta_device_builds_and_runs_without_memory(name):
    model = timm.create_model(name, device='meta', dtype=torch.float32).eval()
    tensors = dict(model.named_parameters(), **dict(model.named_buffers()))
    assert tensors and all(t.device.type == 'meta' for t in tensors.values())
    x = torch.randn(1, 3, 224, 224, device='meta')
    feats = model.forward_features(x)
    assert feats.shape == (1, model.num_features, 7, 7) and feats.device.type == 'meta'
    assert model.forward_head(feats, pre_logits=True).shape == (1, model.head_hidden_size)
    assert model(x).shape == (1, 1000)
    model.to(torch.bfloat16)
    assert model(x.to(torch.bfloat16)).dtype == torch.bfloat16


def test_unknown_factory_kwarg_still_raises():
    with pytest.raises(TypeError):
        timm.create_model('snnmlp_tiny', device='meta', not_a_model_arg=1)


def test_dtype_and_device_kwargs_place_every_tensor():
    model = timm.create_model('snnmlp_tiny', device='cpu', dtype=torch.float64, **TOY)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert model(torch.randn(2, 3, 64, 64, dtype=torch.float64)).dtype == torch.float64
    # on the meta device after .to(): a new head follows the model's device, dtype and mode
    model.to(device='meta', dtype=torch.float64).eval()
    model.reset_classifier(0)
    model.reset_classifier(2)
    head = list(model.get_classifier().parameters())
    assert head and all(p.device.type == 'meta' and p.dtype == torch.float64 for p in head)
    assert not any(m.training for m in model.modules())
    frozen = timm.create_model('snnmlp_tiny', device='meta', **TOY).requires_grad_(False)
    frozen.reset_classifier(0, '')
    assert not any(p.requires_grad for p in frozen.parameters())


def test_factory_kwargs_do_not_change_the_weights():
    torch.manual_seed(1)
    plain = timm.create_model('snnmlp_tiny', **TOY)
    torch.manual_seed(1)
    placed = timm.create_model('snnmlp_tiny', device='cpu', dtype=torch.float32, **TOY)
    for (k, a), b in zip(plain.state_dict().items(), placed.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize('options', OPTIONS, ids=lambda o: ','.join(o) or 'paper')
def test_torchscript_matches_eager(options):
    model = timm.create_model('snnmlp_tiny', **TOY, **options).eval()
    scripted = torch.jit.script(model)
    for size in [(64, 64), (70, 61)]:  # odd sizes pad in the patch embedding and merging
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            torch.testing.assert_close(scripted(x), model(x), rtol=1e-5, atol=1e-5)


def test_torchscript_without_pooling_and_in_timms_scriptable_mode():
    with timm.set_scriptable(True):
        model = timm.create_model('snnmlp_tiny', global_pool='', num_classes=5, **TOY).eval()
    scripted = torch.jit.script(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = scripted(x)
        torch.testing.assert_close(out, model(x), rtol=1e-5, atol=1e-5)
    assert out.shape == (1, 5, 2, 2)


def test_scripted_and_traced_models_still_check_their_input():
    model = timm.create_model('snnmlp_tiny', **TOY).eval()
    with pytest.raises(ValueError, match=r'expects input of shape \(N, 3, H, W\), got '
                                         r'\(2, 4, 32, 32\)'):
        model(torch.randn(2, 4, 32, 32))
    with pytest.raises(ValueError, match='got'):
        model(torch.randn(3, 32, 32))
    with pytest.raises(torch.jit.Error, match='expects input of shape'):
        torch.jit.script(model)(torch.randn(2, 4, 32, 32))
    with pytest.raises(ValueError, match='expects input of shape'):
        torch.fx.symbolic_trace(model)(torch.randn(2, 4, 32, 32))
    with pytest.raises(ValueError, match='expects input of shape'):
        _fx_model(model)(torch.randn(2, 4, 32, 32))


@pytest.mark.parametrize('options', [dict(), dict(lif_placement='replace_gelu'),
                                     dict(token_mixer='axial_shift')],
                         ids=['paper', 'replace_gelu', 'axial_shift'])
def test_fx_tracing_matches_eager(options):
    model = timm.create_model('snnmlp_tiny', **TOY, **options).eval()
    x = torch.randn(1, 3, 70, 61)
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(torch.fx.symbolic_trace(model)(x), ref)
        fx_model = _fx_model(model)
        torch.testing.assert_close(list(fx_model(x).values())[0], ref)
        out = list(torch.jit.script(fx_model)(x).values())[0]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_fx_traced_training_gives_every_parameter_a_gradient():
    model = timm.create_model('snnmlp_tiny', num_classes=7, drop_path_rate=0.1, **TOY).train()
    fx_model = _fx_model(model, train=True)
    out = list(fx_model(torch.randn(2, 3, 64, 64)).values())[0]
    assert out.shape == (2, 7)
    out.mean().backward()
    missing = [n for n, p in fx_model.named_parameters() if p.grad is None]
    assert not missing and sum(1 for _ in fx_model.parameters()) == \
        sum(1 for _ in model.parameters())


def test_fx_feature_extraction_equals_forward_intermediates():
    model = timm.create_model('snnmlp_tiny', **TOY).eval()
    x = torch.randn(1, 3, 96, 80)
    nodes = {info['module']: str(i) for i, info in enumerate(model.feature_info)}
    extractor = create_feature_extractor(model, return_nodes=nodes)
    with torch.no_grad():
        feats = extractor(x)
        final, inter = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
    assert list(feats) == ['0', '1', '2', '3']
    for got, want in zip(feats.values(), inter):
        torch.testing.assert_close(got, want)
    graph_net = FeatureGraphNet(model, out_indices=(1, 3))
    with torch.no_grad():
        for got, want in zip(graph_net(x), (inter[1], inter[3])):
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize('feature_cls', ['getter', 'fx'])
def test_features_only(feature_cls):
    model = timm.create_model('snnmlp_tiny', features_only=True, feature_cls=feature_cls,
                              out_indices=(0, 2, 3), **TOY).eval()
    assert model.feature_info.channels() == [8, 32, 64]
    assert model.feature_info.reduction() == [4, 16, 32]
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 96, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 8, 24, 24), (1, 32, 6, 6), (1, 64, 3, 3)]


def test_forward_intermediates_options():
    model = timm.create_model('snnmlp_tiny', **TOY).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
        last2 = model.forward_intermediates(x, indices=2, intermediates_only=True)
        early = model.forward_intermediates(x, indices=[0, 1], stop_early=True,
                                            intermediates_only=True)
        normed = model.forward_intermediates(x, indices=[-1], norm=True, intermediates_only=True)
    assert [t.shape[1] for t in inter] == [8, 16, 32, 64]
    for got, want in zip(last2 + early, inter[2:] + inter[:2]):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(normed[0], final)
    with pytest.raises(ValueError, match='NCHW'):
        model.forward_intermediates(x, output_fmt='NHWC')
