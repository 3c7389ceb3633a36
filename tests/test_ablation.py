"""The paper's ablations (Tables 5-8) as SNNMLP options, their configs, lif_trace and
tools/analysis_tools/visualize_lif.py.

Independent references here: parameter counts by formula, a float64 functional
network per variant (its own LIF and axial-shift loops), and a float32 numpy
spike count for the visualiser's firing rates.
"""
import glob
import importlib.util
import json
import math
import os.path as osp

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from mmengine.config import Config
from PIL import Image

from mmsnnmlp.models import SNNMLP, CheckpointError, load_backbone_weights
from mmsnnmlp.models.axial_ops import axial_shift
from mmsnnmlp.models.snnmlp_timm import (SNNMLPClassifier, classifier_config,
                                         create_from_checkpoint, register_timm_models)
from mmsnnmlp.ops import LIF, lif_reference, lif_trace
from lif_scalar_reference import scalar_lif

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NARROW = dict(embed_dims=4, depths=(1, 1, 2, 1))
TINY = (96, (2, 2, 6, 2))
SPEC_TINY_BACKBONE = 27_565_200  # spec section 1, without the output norms

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


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models on shared cores
    yield
    torch.set_num_threads(threads)


def _opt(kwargs, name, default):
    return kwargs.get(name, default)


# --------------------------------------------------------------------------
# Parameter counts by formula
# --------------------------------------------------------------------------
def expected_params(embed, depths, kwargs, out_norms=True):
    """SNNMLP parameters from the layer list of each variant (see SNNMLP's docstring)."""
    mixer = _opt(kwargs, 'token_mixer', 'lif')
    dwconv = _opt(kwargs, 'dwconv', True)
    placement = _opt(kwargs, 'lif_placement', None)
    per_neuron = 2 - _opt(kwargs, 'lif_fix_tau', False) - _opt(kwargs, 'lif_fix_vth', False)
    conv = lambda cin, cout, k=1: cin * cout * k * k + cout  # noqa: E731
    total = conv(3, embed, 4) + 2 * embed  # patch embedding and its norm
    for i, depth in enumerate(depths):
        d = embed * 2**i
        # conv1, norm1, conv2_1/conv2_2/conv3, the last norm
        mixer_params = conv(d, d) + 2 * d + 3 * conv(d, d) + 2 * d
        neurons = 2 if mixer == 'lif' else 0
        if dwconv:
            mixer_params += d * 9 + d + 2 * d  # depthwise 3x3 and its norm
        if placement == 'replace_gelu':  # a LIF pair per GELU: after norm1, after the dw
            neurons += 2 * (1 + dwconv + 2 + 1)  # norm, in the two branches, in the MLP
        block = 2 * 2 * d + mixer_params + conv(d, 4 * d) + conv(4 * d, d) + neurons * per_neuron
        total += depth * block
        if placement == 'after_stage':
            total += 2 * per_neuron
        if i < len(depths) - 1:
            total += 2 * 4 * d + 4 * d * 2 * d  # patch merging: norm, reduction without bias
    if out_norms:
        total += sum(2 * embed * 2**i for i in range(len(depths)))
    return total


def test_formula_matches_the_spec():
    assert expected_params(*TINY, {}, out_norms=False) == SPEC_TINY_BACKBONE


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
# lif_trace
# --------------------------------------------------------------------------
def _potentials(x, tau, vth, group, dim):
    """u at every processed position, float64, a loop apart from the library's."""
    xs = np.moveaxis(np.asarray(x, np.float64), dim, -1)
    u_all = xs.copy()  # the tail: u is the input
    length = xs.shape[-1]
    size = length if group is None else group
    for idx in np.ndindex(*xs.shape[:-1]):
        for start in range(0, length - size + 1, size):
            carried = 0.0
            for j in range(start, start + size):
                u = tau * carried + xs[idx + (j,)]
                u_all[idx + (j,)] = u
                carried = 0.0 if u > vth else u
    return np.moveaxis(u_all, -1, dim)


@pytest.mark.parametrize('shape, group, dim', [((2, 3, 11, 5), 4, 2), ((1, 2, 3, 9), 2, 3),
                                               ((1, 2, 6, 7), None, 3), ((1, 1, 3, 5), 7, 2)])
def test_lif_trace(shape, group, dim):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    tau, vth = 0.6, 0.05
    out, u, fired = lif_trace(x, tau, vth, group, dim)
    torch.testing.assert_close(out, lif_reference(x, tau, vth, group, dim), rtol=0, atol=0)
    torch.testing.assert_close(out.numpy(), scalar_lif(x.numpy(), tau, vth, group, dim))
    torch.testing.assert_close(u.numpy(), _potentials(x.numpy(), tau, vth, group, dim))
    length = shape[dim]
    size = length if group is None else group
    processed = torch.zeros(length, dtype=torch.bool)
    processed[:length // size * size] = True
    mask = processed.view([-1 if d == dim else 1 for d in range(4)]).expand(shape)
    assert torch.equal(fired, (u > vth) & mask)
    assert fired.dtype == torch.bool


# --------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------
ABLATION = sorted(glob.glob(osp.join(ROOT, 'configs/ablation/det/*.py')) +
                  glob.glob(osp.join(ROOT, 'configs/ablation/seg/*.py')))
IMAGENET = sorted(glob.glob(osp.join(ROOT, 'configs/ablation/imagenet/*.py')))


def _plain(cfg):
    return json.loads(json.dumps(cfg.to_dict(), default=str))


@pytest.mark.parametrize('path', ABLATION, ids=lambda p: osp.basename(p)[:-3])
def test_dense_ablation_config(path):
    """Only the backbone (or, for lif-lr, the optimizer's tau/Vth rules) differs from the
    paper config it inherits, and the backbone has the variant's parameter count."""
    cfg = Config.fromfile(path)
    with open(path) as f:
        base = Config.fromfile(osp.join(osp.dirname(path), f.read().split("_base_ = '")[1]
                                        .split("'")[0]))
    mine, theirs = _plain(cfg), _plain(base)
    backbone = mine['model'].pop('backbone')
    theirs['model'].pop('backbone')
    for top in ('pretrained', 'optim_wrapper'):
        mine.pop(top, None), theirs.pop(top, None)
    assert mine == theirs
    if 'lif-lr' in path:
        keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
        assert keys['.tau'] == keys['.Vth'] == dict(lr_mult=0.1, decay_mult=0.)
        assert keys['norm'] == dict(decay_mult=0.)
        assert backbone == _plain(base)['model']['backbone']
        return
    assert cfg.optim_wrapper == base.optim_wrapper
    kwargs = {k: v for k, v in backbone.items() if k not in ('type', 'init_cfg')}
    assert kwargs.pop('arch') == 'tiny'
    model = SNNMLP('tiny', **kwargs)
    assert sum(p.numel() for p in model.parameters()) == expected_params(*TINY, kwargs)
    if not {'token_mixer', 'dwconv', 'lif_placement', 'lif_fix_tau'} & set(kwargs):
        # same keys as the released weights: the base config's checkpoint is kept
        assert backbone['init_cfg'] == _plain(base)['model']['backbone']['init_cfg']
    else:
        assert backbone['init_cfg']['checkpoint'].startswith('checkpoints/snnmlp-t_')


@pytest.mark.parametrize('path', IMAGENET, ids=lambda p: osp.basename(p)[:-3])
def test_imagenet_ablation_config(path):
    register_timm_models()
    name, kwargs = classifier_config(path)
    assert name == 'snnmlp_tiny'
    model = timm.create_model(name, **kwargs)
    head = 2 * 768 + 768 * 1000 + 1000
    assert sum(p.numel() for p in model.parameters()) == \
        expected_params(*TINY, kwargs, out_norms=False) + head
    assert isinstance(Config.fromfile(path).paper_top1, (float, type(None)))


def test_classifier_config_refuses_other_files(tmp_path):
    path = tmp_path / 'cfg.py'
    path.write_text("model = dict(type='resnet50')\n")
    with pytest.raises(ValueError, match='not an ImageNet model config'):
        classifier_config(str(path))


def test_lif_lr_option_gives_tau_vth_their_own_lr_and_no_decay():
    from mmengine.optim import build_optim_wrapper
    path = osp.join(ROOT, 'configs/ablation/det/mask-rcnn_snnmlp-t-lif-lr_fpn_ms-crop-3x_coco.py')
    cfg = Config.fromfile(path)
    model = torch.nn.Module()
    model.backbone = SNNMLP(NARROW, token_mixer='axial_shift', lif_placement='replace_gelu')
    model.neck = torch.nn.Conv2d(4, 4, 1)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr, base_wd = cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay
    group_of = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    seen = 0
    for name, param in model.named_parameters():
        group = group_of[id(param)]
        if name.rsplit('.', 1)[1] in ('tau', 'Vth'):
            seen += 1
            assert group['lr'] == pytest.approx(0.1 * base_lr) and group['weight_decay'] == 0, name
        else:
            assert group['lr'] == base_lr, name
            expected_wd = 0 if 'norm' in name else base_wd
            assert group['weight_decay'] == pytest.approx(expected_wd), name
    assert seen == 5 * 5 * 2 * 2  # 5 blocks x 5 LIF layers x 2 neurons x (tau, Vth)


# --------------------------------------------------------------------------
# The visualiser
# --------------------------------------------------------------------------
def _tool():
    spec = importlib.util.spec_from_file_location(
        'visualize_lif', osp.join(ROOT, 'tools/analysis_tools/visualize_lif.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _count_fires(x, tau, vth, group, dim):
    """(spikes, processed positions) of one LIF call, float32 like the model."""
    xs = np.moveaxis(np.asarray(x, np.float32), dim, -1)
    tau, vth = np.float32(tau), np.float32(vth)
    length = xs.shape[-1]
    size = length if group is None else group
    spikes = positions = 0
    for start in range(0, length - size + 1, size):
        carried = np.zeros(xs.shape[:-1], np.float32)
        for j in range(start, start + size):
            u = tau * carried + xs[..., j]
            fired = u > vth
            spikes += int(fired.sum())
            positions += fired.size
            carried = np.where(fired, np.float32(0), u)
    return spikes, positions


def _direct_rates(network, run):
    """Firing counts from hooks of this test's own on every LIF."""
    counts, handles = {}, []
    for name, module in network.named_modules():
        if isinstance(module, LIF) and module.group != -1:
            def hook(m, inputs, output, name=name):
                tau, vth = (float(torch.as_tensor(v).detach()) for v in (m.tau, m.Vth))
                counts[name] = _count_fires(inputs[0].detach().numpy(), tau, vth, m.group, m.dim)
            handles.append(module.register_forward_hook(hook))
    run()
    for handle in handles:
        handle.remove()
    return counts


def _check_outputs(out_dir, direct, rows):
    with Image.open(out_dir / 'lif_visualization.png') as png:
        assert png.size[0] > 500 and png.size[1] > 200 * rows
    with open(out_dir / 'firing_rates.json') as f:
        rates = json.load(f)
    assert set(rates['neurons']) == set(direct)
    for name, (spikes, positions) in direct.items():
        entry = rates['neurons'][name]
        assert (entry['fired'], entry['positions']) == (spikes, positions), name
        if positions == 0:  # the axis is shorter than one group
            assert entry['firing_rate'] is None
            continue
        assert 0 <= entry['firing_rate'] <= 1
        assert entry['firing_rate'] == pytest.approx(spikes / positions)
    pooled = {}
    for name, (spikes, positions) in direct.items():
        parts = name.split('.')  # layers.S.blocks.B... or layers.S.lif...
        block = f'{parts[1]}.{parts[3]}' if parts[2] == 'blocks' else parts[1]
        total = pooled.setdefault(block, [0, 0])
        total[0] += spikes
        total[1] += positions
    assert set(rates['blocks']) == set(pooled)
    for block, (spikes, positions) in pooled.items():
        expected = spikes / positions if positions else None
        assert rates['blocks'][block]['firing_rate'] == pytest.approx(expected)
    return rates


@pytest.fixture
def image_file(tmp_path):
    image = tmp_path / 'image.png'
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)).save(image)
    return image


def _eval_batch(model, image):
    from timm.data import create_transform, resolve_data_config
    transform = create_transform(**resolve_data_config({}, model=model))
    return transform(Image.open(image).convert('RGB')).unsqueeze(0)


def test_visualiser_classifier_with_model_config(tmp_path, image_file):
    """LIF after each stage, from an ImageNet model config and its checkpoint. Groups of
    16: stage 1 (28 positions) has one full group, stages 2 and 3 (14, 7) none."""
    register_timm_models()
    torch.manual_seed(0)
    kwargs = dict(embed_dim=8, depths=(1, 1, 2, 1), token_mixer='axial_shift',
                  lif_placement='after_stage', lif_group=16)
    model = timm.create_model('snnmlp_tiny', num_classes=4, **kwargs).eval()
    ckpt = tmp_path / 'cls.pth'
    torch.save(model.state_dict(), ckpt)
    config = tmp_path / 'variant.py'
    config.write_text(f"model = dict(type='snnmlp_tiny', **{kwargs!r})\n")
    rates = _tool().main([str(image_file), '--checkpoint', str(ckpt), '--config', str(config),
                          '--blocks', '1', '2', '--out-dir', str(tmp_path / 'out')])
    assert list(rates['blocks']) == ['0', '1', '2', '3']  # the LIF after each stage
    assert rates['blocks']['2']['firing_rate'] is None
    # 16 channels x one group of 16 rows x 28 columns
    assert rates['neurons']['layers.1.lif.lif1']['positions'] == 16 * 16 * 28
    batch = _eval_batch(model, image_file)
    direct = _direct_rates(model, lambda: model(batch))
    _check_outputs(tmp_path / 'out', direct, rows=4)


def test_visualiser_classifier_checkpoint_alone(tmp_path, image_file):
    """The paper's model read off a training-layout checkpoint; one channel; bad requests."""
    register_timm_models()
    tool = _tool()
    torch.manual_seed(1)
    model = timm.create_model('snnmlp_tiny', num_classes=4, embed_dim=8,
                              depths=(1, 1, 2, 1)).eval()
    ckpt = tmp_path / 'cls.pth'
    torch.save({'model': model.state_dict()}, ckpt)
    tool.main([str(image_file), '--checkpoint', str(ckpt), '--channel', '5',
               '--out-dir', str(tmp_path / 'plain')])
    direct = _direct_rates(model, lambda: model(_eval_batch(model, image_file)))
    rates = _check_outputs(tmp_path / 'plain', direct, rows=8)
    assert set(rates['blocks']) == {'0.0', '1.0', '2.0', '2.1', '3.0'}
    with pytest.raises(SystemExit, match='--channel 8 is out of range'):
        tool.main([str(image_file), '--checkpoint', str(ckpt), '--channel', '8',
                   '--out-dir', str(tmp_path / 'bad')])
    with pytest.raises(SystemExit, match=r'--blocks 4\.0: no LIF neurons there'):
        tool.main([str(image_file), '--checkpoint', str(ckpt), '--blocks', '4.0',
                   '--out-dir', str(tmp_path / 'bad')])
    no_lif = timm.create_model('snnmlp_tiny', num_classes=4, embed_dim=8, depths=(1, 1, 2, 1),
                               token_mixer='none')
    torch.save(no_lif.state_dict(), ckpt)
    config = tmp_path / 'variant.py'
    config.write_text("model = dict(type='snnmlp_tiny', embed_dim=8, depths=(1, 1, 2, 1), "
                      "token_mixer='none')\n")
    with pytest.raises(SystemExit, match='no LIF neurons'):
        tool.main([str(image_file), '--checkpoint', str(ckpt), '--config', str(config),
                   '--out-dir', str(tmp_path)])
    assert not (tmp_path / 'bad').exists()


@pytest.mark.slow
@pytest.mark.parametrize('config', ['configs/toy/snnmlp-toy_upernet_toy-ade.py',
                                    'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py'])
def test_visualiser_dense(tmp_path, config):
    """mmseg and mmdet checkpoints, through the libraries' own inference."""
    import mmsnnmlp  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmsnnmlp.utils import library_of
    tool = _tool()
    cfg = Config.fromfile(osp.join(ROOT, config))
    library = library_of(cfg)
    registry = __import__(f'{library}.registry', fromlist=['MODELS']).MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(library):
        model = registry.build(cfg.model)
    model.init_weights()
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    image = tmp_path / 'image.jpg'
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (96, 120, 3), np.uint8)).save(image)

    rates = tool.main([str(image), '--checkpoint', str(ckpt), '--config',
                       osp.join(ROOT, config), '--blocks', '2.1', '--out-dir', str(tmp_path)])
    assert set(rates['blocks']) == {'0.0', '1.0', '2.0', '2.1', '3.0'}
    network = tool.dense_model(osp.join(ROOT, config), str(ckpt), 'cpu')
    direct = _direct_rates(network[1], lambda: network[2](str(image)))
    _check_outputs(tmp_path, direct, rows=2)


def test_eval_tool_takes_an_imagenet_model_config(tmp_path, image_file, capsys):
    """eval_imagenet.py --model-config builds the variant the checkpoint holds."""
    register_timm_models()
    spec = importlib.util.spec_from_file_location(
        'eval_imagenet', osp.join(ROOT, 'tools/analysis_tools/eval_imagenet.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for folder in ('a', 'b'):
        (tmp_path / 'val' / folder).mkdir(parents=True)
        Image.open(image_file).save(tmp_path / 'val' / folder / 'x.png')
    kwargs = dict(embed_dim=8, depths=(1, 1, 1, 1), token_mixer='axial_shift', dwconv=False)
    model = timm.create_model('snnmlp_tiny', num_classes=2, **kwargs)
    ckpt = tmp_path / 'as_mlp.pth'
    torch.save(model.state_dict(), ckpt)
    config = tmp_path / 'as_mlp.py'
    config.write_text(f"model = dict(type='snnmlp_tiny', **{kwargs!r})\n")
    args = [str(ckpt), '--data', str(tmp_path / 'val'), '--device', 'cpu', '--workers', '0',
            '--img-size', '32', '--no-progress']
    result = tool.main(args + ['--model-config', str(config)])
    assert result['images'] == 2 and 0 <= result['top1'] <= 100
    out = capsys.readouterr().out
    assert f'model: {config}' in out and 'reported for' not in out
    with pytest.raises(SystemExit, match='does not fit'):  # the paper's model: other keys
        tool.main(args)
    with pytest.raises(SystemExit):
        tool.main(args + ['--model-config', str(config), '--arch', 'tiny'])
