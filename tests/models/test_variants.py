"""The paper's ablations (Tables 5-8) as SNNMLP options: parameter counts, state-dict
layouts, outputs, bad options and checkpoints of each variant.

Independent references here: parameter counts by formula (helpers.variant_params) and a
float64 functional network per variant (its own LIF and axial-shift loops).
"""
import math

import pytest
import timm
import torch
import torch.nn.functional as F

from mmsnnmlp.models import SNNMLP, CheckpointError, load_backbone_weights
from mmsnnmlp.models.axial_ops import axial_shift
from mmsnnmlp.models.snnmlp_timm import (SNNMLPClassifier, create_from_checkpoint,
                                         register_timm_models)
from mmsnnmlp.ops import LIF, lif_reference
from helpers.variant_params import TINY, expected_params

pytestmark = pytest.mark.usefixtures('one_thread')  # tests/conftest.py

NARROW = dict(embed_dims=4, depths=(1, 1, 2, 1))
TINY_BACKBONE_PARAMS = 27_565_200  # the released SNN-MLP-T without head, final norm, output norms

# name -> SNNMLP keyword arguments; the paper's rows and the two extra switches
VARIANTS = {
    'paper': {},
    'as_mlp': dict(token_mixer='axial_shift', dwconv=False),
    'dwconv_axial_shift': dict(token_mixer='axial_shift'),
    'lif_no_dwconv': dict(dwconv=False),
    'fixed_tau_vth': dict(lif_fix_tau=True, lif_fix_vth=True, lif_tau=0.3, lif_vth=-0.05),
    'fixed_tau_only': dict(lif_fix_tau=True, lif_tau=0.4),
    'group2': dict(lif_group=2),
    'group7': dict(lif_group=7),
    'global': dict(lif_group=None),
    'after_stage': dict(token_mixer='axial_shift', lif_placement='after_stage'),
    'replace_gelu': dict(token_mixer='axial_shift', lif_placement='replace_gelu'),
    'replace_gelu_no_dw': dict(token_mixer='lif', dwconv=False, lif_placement='replace_gelu'),
    'no_lif': dict(lif_group=-1),
    'mixer_none': dict(token_mixer='none'),
    'shift3_dilation2': dict(token_mixer='axial_shift', shift_size=3, shift_dilation=2),
}
MIXER_KEY = {'lif': 'lif_module', 'axial_shift': 'axial_shift', 'none': 'token_mixer'}


def _opt(kwargs, name, default):
    return kwargs.get(name, default)


def test_formula_matches_the_released_count():
    assert expected_params(*TINY, {}, out_norms=False) == TINY_BACKBONE_PARAMS


@pytest.mark.parametrize('name', sorted(VARIANTS))
def test_parameter_counts(name):
    kwargs = VARIANTS[name]
    tiny = SNNMLP('tiny', **kwargs)
    assert sum(p.numel() for p in tiny.parameters()) == expected_params(*TINY, kwargs)
    narrow = SNNMLP(NARROW, **kwargs)
    assert sum(p.numel() for p in narrow.parameters()) == \
        expected_params(NARROW['embed_dims'], NARROW['depths'], kwargs)
    # the timm classifier: the same stages, its final norm and 1000-class head instead
    classifier = SNNMLPClassifier(**kwargs)
    head = 2 * 768 + 768 * 1000 + 1000
    assert sum(p.numel() for p in classifier.parameters()) == \
        expected_params(*TINY, kwargs, out_norms=False) + head


def test_as_mlp_variant_has_as_mlp_keys():
    """AS-MLP's block: axial_shift.{conv1, norm1, conv2_1, conv2_2, norm2, conv3}."""
    model = SNNMLP(NARROW, token_mixer='axial_shift', dwconv=False, out_indices=(3,))
    block = {k[len('layers.0.blocks.0.'):] for k in model.state_dict()
             if k.startswith('layers.0.blocks.0.')}
    mixer = {f'axial_shift.{m}.{p}' for m in ('conv1', 'conv2_1', 'conv2_2', 'conv3', 'norm1',
                                               'norm2') for p in ('weight', 'bias')}
    rest = {f'{m}.{p}' for m in ('norm1', 'norm2', 'mlp.fc1', 'mlp.fc2')
            for p in ('weight', 'bias')}
    assert block == mixer | rest


def test_default_is_the_paper_model_key_for_key():
    model = SNNMLP(NARROW)
    keys = [k for k in model.state_dict() if k.startswith('layers.1.blocks.0.lif_module.')]
    names = [k.split('lif_module.')[1] for k in keys]
    params = lambda *modules: [f'{m}.{p}' for m in modules for p in ('weight', 'bias')]  # noqa
    assert names == params('conv1', 'norm1', 'dw1', 'norm2') \
        + ['lif1.tau', 'lif1.Vth', 'lif2.tau', 'lif2.Vth'] \
        + params('conv2_1', 'conv2_2', 'norm3', 'conv3')


# --------------------------------------------------------------------------
# An independent float64 network per variant
# --------------------------------------------------------------------------
def ref_lif(x, tau, vth, group, dim):
    if group == -1:
        return x
    x = x.movedim(dim, -1)
    out = x.clone()
    length = x.shape[-1]
    size = length if group is None else group
    for start in range(0, length - size + 1, size):  # full groups only
        carried = torch.zeros_like(x[..., 0])
        for j in range(start, start + size):
            u = tau * carried + x[..., j]
            fired = u > vth
            out[..., j] = torch.where(fired, u, vth)
            carried = torch.where(fired, torch.zeros_like(u), u)
    return out.movedim(-1, dim)


def ref_shift(x, shift_size, dim, dilation):
    """Channel c of group c // ceil(C / s) moves by (group - s // 2) * dilation."""
    out = torch.zeros_like(x)
    chunk = math.ceil(x.shape[1] / shift_size)
    length = x.shape[dim]
    for c in range(x.shape[1]):
        offset = (c // chunk - shift_size // 2) * dilation
        for p in range(length):
            if 0 <= p - offset < length:
                out[:, c].select(dim - 1, p).copy_(x[:, c].select(dim - 1, p - offset))
    return out


def ref_stage_features(sd, kwargs, x, depths):
    mixer = _opt(kwargs, 'token_mixer', 'lif')
    dwconv = _opt(kwargs, 'dwconv', True)
    placement = _opt(kwargs, 'lif_placement', None)
    group = _opt(kwargs, 'lif_group', 4)
    shift, dilation = _opt(kwargs, 'shift_size', 5), _opt(kwargs, 'shift_dilation', 1)

    def gn(t, p):
        return F.group_norm(t, 1, sd[p + '.weight'], sd[p + '.bias'], 1e-5)

    def cv(t, p, **kw):
        return F.conv2d(t, sd[p + '.weight'], sd.get(p + '.bias'), **kw)

    def tau_vth(p):  # a fixed value is no key: the configured float
        return (sd.get(p + '.tau', torch.tensor(float(_opt(kwargs, 'lif_tau', 0.25))).double()),
                sd.get(p + '.Vth', torch.tensor(float(_opt(kwargs, 'lif_vth', 0.25))).double()))

    def axial_lif(t, p):
        return 0.5 * (ref_lif(t, *tau_vth(p + '.lif1'), group, 2)
                      + ref_lif(t, *tau_vth(p + '.lif2'), group, 3))

    def act(t, p):
        return axial_lif(t, p) if placement == 'replace_gelu' else F.gelu(t)

    x = F.pad(x, (0, -x.shape[3] % 4, 0, -x.shape[2] % 4))
    x = gn(cv(x, 'patch_embed.proj', stride=4), 'patch_embed.norm')
    feats = []
    for i, depth in enumerate(depths):
        dim = x.shape[1]
        for j in range(depth):
            b = f'layers.{i}.blocks.{j}'
            m = f'{b}.{MIXER_KEY[mixer]}'
            t = act(gn(cv(gn(x, f'{b}.norm1'), f'{m}.conv1'), f'{m}.norm1'), f'{m}.act1')
            if dwconv:
                t = act(gn(cv(t, f'{m}.dw1', padding=1, groups=dim), f'{m}.norm2'), f'{m}.act_dw')
            if mixer == 'lif':
                first = ref_lif(t, *tau_vth(f'{m}.lif1'), group, 2)
                second = ref_lif(t, *tau_vth(f'{m}.lif2'), group, 3)
            elif mixer == 'axial_shift':  # AS-MLP: W first
                first, second = ref_shift(t, shift, 3, dilation), ref_shift(t, shift, 2, dilation)
            else:
                first = second = t
            h = act(cv(first, f'{m}.conv2_1'), f'{m}.act2_1')
            w = act(cv(second, f'{m}.conv2_2'), f'{m}.act2_2')
            x = x + cv(gn(h + w, f'{m}.norm3' if dwconv else f'{m}.norm2'), f'{m}.conv3')
            x = x + cv(act(cv(gn(x, f'{b}.norm2'), f'{b}.mlp.fc1'), f'{b}.mlp.act'), f'{b}.mlp.fc2')
        if placement == 'after_stage':
            x = axial_lif(x, f'layers.{i}.lif')
        feats.append(x)
        if i < len(depths) - 1:
            x = F.pad(x, (0, x.shape[3] % 2, 0, x.shape[2] % 2))
            x = torch.cat([x[..., 0::2, 0::2], x[..., 1::2, 0::2], x[..., 0::2, 1::2],
                           x[..., 1::2, 1::2]], 1)
            x = cv(gn(x, f'layers.{i}.downsample.norm'), f'layers.{i}.downsample.reduction')
    return feats


def randomised(model, seed):
    """The model's state dict with every tensor random (norms near 1, tau/Vth spread)."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for key, value in model.state_dict().items():
        noise = torch.randn(value.shape, generator=gen, dtype=torch.float64)
        if key.endswith('.tau'):
            sd[key] = 0.2 + 0.5 * torch.rand(value.shape, generator=gen, dtype=torch.float64)
        elif key.endswith('.Vth'):
            sd[key] = -0.2 + 0.4 * torch.rand(value.shape, generator=gen, dtype=torch.float64)
        elif 'norm' in key and key.endswith('.weight'):
            sd[key] = 1 + 0.2 * noise
        else:
            fan_in = value[0].numel() if value.dim() > 1 else 25
            sd[key] = noise / fan_in ** 0.5
    return sd


@pytest.mark.parametrize('name', sorted(VARIANTS))
@pytest.mark.parametrize('hw', [(37, 27), (9, 70)])
def test_variant_matches_independent_network(name, hw):
    kwargs = VARIANTS[name]
    model = SNNMLP(NARROW, drop_path_rate=0.0, **kwargs).double().eval()
    sd = randomised(model, seed=3)
    model.load_state_dict(sd)
    x = torch.randn(2, 3, *hw, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.no_grad():
        outs = model(x)
        refs = ref_stage_features(sd, kwargs, x, NARROW['depths'])
    assert len(outs) == len(refs) == 4
    for i, (out, ref) in enumerate(zip(outs, refs)):
        ref = F.group_norm(ref, 1, sd[f'out_norms.{i}.weight'], sd[f'out_norms.{i}.bias'], 1e-5)
        torch.testing.assert_close(out, ref, rtol=1e-7, atol=1e-7)  # float64, summation order


@pytest.mark.parametrize('name', ['as_mlp', 'after_stage', 'replace_gelu', 'fixed_tau_vth',
                                  'global'])
@pytest.mark.parametrize('hw', [(1, 1), (33, 65), (17, 9)])
def test_any_input_size(name, hw):
    model = SNNMLP(NARROW, **VARIANTS[name]).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *hw))
    h, w = math.ceil(hw[0] / 4), math.ceil(hw[1] / 4)
    for i, out in enumerate(outs):
        assert tuple(out.shape) == (1, 4 * 2**i, h, w) and torch.isfinite(out).all()
        h, w = math.ceil(h / 2), math.ceil(w / 2)


def test_variants_train():
    """Gradients reach every parameter the variant adds (tau/Vth of the placed LIFs too)."""
    for name in ('after_stage', 'replace_gelu', 'as_mlp'):
        model = SNNMLP(NARROW, drop_path_rate=0.0, **VARIANTS[name]).train()
        outs = model(torch.randn(2, 3, 40, 36))
        sum((o * torch.randn_like(o)).sum() for o in outs).backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, (name, missing)


# --------------------------------------------------------------------------
# Axial shift and the LIF options
# --------------------------------------------------------------------------
@pytest.mark.parametrize('channels, shift_size, dilation', [(7, 5, 1), (3, 5, 2), (10, 3, 3),
                                                            (12, 1, 1), (5, 7, 1)])
@pytest.mark.parametrize('dim', [2, 3])
def test_axial_shift_against_loop(channels, shift_size, dilation, dim):
    x = torch.randn(2, channels, 6, 9, dtype=torch.float64, requires_grad=True)
    out = axial_shift(x, shift_size, dim, dilation)
    torch.testing.assert_close(out, ref_shift(x.detach(), shift_size, dim, dilation),
                               rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda t: axial_shift(t, shift_size, dim, dilation), (x,))


def test_lif_group_minus_one_is_the_identity_with_tau_vth():
    layer = LIF(dim=2, group=-1)
    x = torch.randn(1, 2, 8, 8)
    assert layer(x) is x
    assert {n for n, _ in layer.named_parameters()} == {'tau', 'Vth'}
    a = SNNMLP(NARROW, lif_group=-1).eval()
    b = SNNMLP(NARROW, token_mixer='none').eval()
    state = {k.replace('lif_module', 'token_mixer'): v for k, v in a.state_dict().items()
             if not k.endswith(('.tau', '.Vth'))}
    b.load_state_dict(state)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for oa, ob in zip(a(x), b(x)):
            torch.testing.assert_close(oa, ob, rtol=0, atol=0)


def test_fixed_tau_vth_are_plain_floats():
    model = SNNMLP(NARROW, lif_fix_tau=True, lif_fix_vth=True, lif_tau=0.3, lif_vth=0.1)
    neuron = model.layers[0].blocks[0].lif_module.lif1
    assert neuron.tau == 0.3 and neuron.Vth == 0.1 and isinstance(neuron.tau, float)
    assert not [k for k in model.state_dict() if k.endswith(('.tau', '.Vth'))]
    only_vth = SNNMLP(NARROW, lif_fix_vth=True)
    keys = [k for k in only_vth.state_dict() if k.endswith(('.tau', '.Vth'))]
    assert keys and all(k.endswith('.tau') for k in keys)
    x = torch.randn(1, 3, 4, 8)
    torch.testing.assert_close(neuron(x), lif_reference(x, 0.3, 0.1, 4, 2))


@pytest.mark.parametrize('kwargs, message', [
    (dict(token_mixer='shift'), 'token_mixer must be one of'),
    (dict(token_mixer=None), 'token_mixer must be one of'),
    (dict(lif_placement='before_stage'), 'lif_placement must be one of'),
    (dict(dwconv='yes'), 'dwconv must be True or False'),
    (dict(lif_fix_tau=1), 'lif_fix_tau must be True or False'),
    (dict(lif_fix_vth='no'), 'lif_fix_vth must be True or False'),
    (dict(shift_size=4), 'shift_size must be an odd int'),
    (dict(shift_size=0), 'shift_size must be an odd int'),
    (dict(shift_size=5.0), 'shift_size must be an odd int'),
    (dict(shift_dilation=0), 'shift_dilation must be an int >= 1'),
    (dict(shift_dilation=True), 'shift_dilation must be an int >= 1'),
    (dict(lif_group=-2), r'lif_group must be an int >= 1, None \(global LIF\) or -1'),
    (dict(lif_group=0), 'lif_group must be'),
])
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SNNMLP(NARROW, **kwargs)
    with pytest.raises(ValueError, match=message):
        SNNMLPClassifier(embed_dim=4, depths=(1, 1, 1, 1), **kwargs)


# --------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------
@pytest.mark.parametrize('name', sorted(VARIANTS))
def test_variant_loads_its_own_checkpoints(tmp_path, name):
    kwargs = VARIANTS[name]
    source = SNNMLP(NARROW, **kwargs)
    sd = randomised(source, seed=5)
    sd = {k: v.float() for k, v in sd.items()}
    path = tmp_path / 'backbone.pth'
    torch.save(sd, path)
    model = SNNMLP(NARROW, init_cfg=dict(type='Pretrained', checkpoint=str(path)), **kwargs)
    model.init_weights()
    own = model.state_dict()
    assert own.keys() == sd.keys() and all(torch.equal(own[k], sd[k]) for k in sd)
    # a full detector checkpoint of the variant, through the loader directly
    full = tmp_path / 'detector.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in sd.items()}}, full)
    other = SNNMLP(NARROW, **kwargs)
    load_backbone_weights(other, str(full))
    assert all(torch.equal(other.state_dict()[k], sd[k]) for k in sd)


def test_classifier_variant_loads_its_own_checkpoint(tmp_path):
    register_timm_models()
    kwargs = dict(embed_dim=4, depths=(1, 1, 1, 1), num_classes=3, token_mixer='axial_shift',
                  lif_placement='after_stage', lif_fix_vth=True)
    source = timm.create_model('snnmlp_tiny', **kwargs)
    path = tmp_path / 'cls.pth'
    torch.save({'model': source.state_dict()}, path)  # the official training layout
    kwargs.pop('num_classes')
    model, _ = create_from_checkpoint(str(path), 'snnmlp_tiny', **kwargs)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.state_dict().items())
    with pytest.raises(CheckpointError, match='lif_fix_vth'):  # the default keeps Vth keys
        create_from_checkpoint(str(path), 'snnmlp_tiny', embed_dim=4, depths=(1, 1, 1, 1),
                               token_mixer='axial_shift', lif_placement='after_stage')


def test_checkpoint_without_tau_vth_needs_the_fixed_variant(tmp_path):
    """Official --lif_fix_tau --lif_fix_vth checkpoints have no tau/Vth keys."""
    learnable = randomised(SNNMLP(NARROW), seed=6)
    fixed_sd = {k: v.float() for k, v in learnable.items() if not k.endswith(('.tau', '.Vth'))}
    path = tmp_path / 'fixed.pth'
    torch.save(fixed_sd, path)

    fixed = SNNMLP(NARROW, lif_fix_tau=True, lif_fix_vth=True, lif_tau=0.2, lif_vth=0.15)
    load_backbone_weights(fixed, str(path))
    assert all(torch.equal(fixed.state_dict()[k], v) for k, v in fixed_sd.items())
    assert fixed.layers[2].blocks[1].lif_module.lif2.tau == 0.2

    default = SNNMLP(NARROW)
    before = {k: v.clone() for k, v in default.state_dict().items()}
    with pytest.raises(CheckpointError, match=r'lif_fix_tau=True, lif_fix_vth=True(.|\n)*'
                       r'missing keys \(20\): layers\.0\.blocks\.0\.lif_module\.lif1\.tau'):
        load_backbone_weights(default, str(path))
    assert all(torch.equal(default.state_dict()[k], v) for k, v in before.items())  # untouched
    # tau only fixed: the checkpoint must lack exactly the tau keys
    with pytest.raises(CheckpointError, match=r'missing keys \(10\).*lif1\.Vth'):
        load_backbone_weights(SNNMLP(NARROW, lif_fix_tau=True), str(path))
    # the other way round: trained tau/Vth are not silently dropped by a fixed model
    full = tmp_path / 'learnable.pth'
    torch.save({k: v.float() for k, v in learnable.items()}, full)
    with pytest.raises(CheckpointError,
                       match=r'The model fixes tau/Vth(.|\n)*unexpected keys \(20\)'):
        load_backbone_weights(fixed, str(full))
    # one lost tau is damage, not a fixed-tau checkpoint: no such advice
    damaged = {k: v.float() for k, v in learnable.items()
               if k != 'layers.2.blocks.1.lif_module.lif1.tau'}
    torch.save(damaged, path)
    with pytest.raises(CheckpointError, match=r'missing keys \(1\)') as err:
        load_backbone_weights(SNNMLP(NARROW), str(path))
    assert 'trained with them fixed' not in str(err.value)


# --------------------------------------------------------------------------
# One spec, one table of names
# --------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['as_mlp', 'replace_gelu', 'fixed_tau_vth'])
def test_backbone_and_classifier_share_one_spec(name):
    """Both build their stages from the same SNNMLPSpec: the same keys and shapes."""
    from mmsnnmlp.models import SNNMLPSpec
    spec = SNNMLPSpec.from_arch(NARROW, **VARIANTS[name])
    backbone, classifier = SNNMLP.from_spec(spec), SNNMLPClassifier.from_spec(spec)
    assert backbone.spec == classifier.spec == spec == SNNMLP(NARROW, **VARIANTS[name]).spec
    stages = {k: v.shape for k, v in backbone.state_dict().items() if k.startswith('layers.')}
    assert stages == {k: v.shape for k, v in classifier.state_dict().items()
                      if k.startswith('layers.')}
    with pytest.raises(Exception):
        spec.lif_group = 2  # frozen: validated once, never changed after


def test_variant_table_names_each_model_once():
    from mmsnnmlp.models.variants import (ARCH_ALIASES, SHORT_NAMES, TIMM_VARIANTS, VARIANTS as
                                          TABLE, find_variant)
    from mmsnnmlp.models.snnmlp_timm import TIMM_MODEL_NAMES
    assert sorted(TABLE) == ['base', 'small', 'tiny']
    assert ARCH_ALIASES == {'t': 'tiny', 's': 'small', 'b': 'base'}
    assert SHORT_NAMES == {'snnmlp-t': 'tiny', 'snnmlp-s': 'small', 'snnmlp-b': 'base'}
    assert TIMM_MODEL_NAMES == tuple(TIMM_VARIANTS) == ('snnmlp_tiny', 'snnmlp_small',
                                                        'snnmlp_base')
    for v in TABLE.values():
        assert SNNMLP(v.alias.upper()).depths == v.depths
        assert find_variant(v.embed_dims, list(v.depths)) is v
    assert find_variant(8, (1, 1, 1, 1)) is None
    # the backbone factories are gone: snnmlp_tiny is the timm model only
    import mmsnnmlp.models as models
    assert not hasattr(models, 'snnmlp_tiny')


def test_token_mixers_come_from_the_registry():
    from mmsnnmlp.models.layers import TOKEN_MIXERS
    assert {kind: cls.key for kind, cls in TOKEN_MIXERS.items()} == MIXER_KEY
    for kind, cls in TOKEN_MIXERS.items():
        block = SNNMLP(NARROW, token_mixer=kind).layers[0].blocks[0]
        assert type(block.mixer) is cls and getattr(block, MIXER_KEY[kind]) is block.mixer
