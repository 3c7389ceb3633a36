"""timm classifiers (mmsnnmlp.models.snnmlp_timm)."""
import math
import os
import os.path as osp
import subprocess
import sys
import warnings

import pytest
import timm
import torch
import torch.nn.functional as F

from mmsnnmlp.models import CheckpointError, safe_load
from mmsnnmlp.models import snnmlp_timm
from mmsnnmlp.models.snnmlp_timm import (RELEASE_URL, SNNMLPClassifier, create_from_checkpoint,
                                         load_released_weights, register_timm_models)
from helpers.released_layout import (ARCHS, classifier_logits, released_state_dict, stage_features,
                             training_checkpoint)

pytestmark = pytest.mark.usefixtures('one_thread', 'timm_registered')  # tests/conftest.py

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NARROW = dict(embed_dim=8, depths=(1, 1, 2, 1))  # 4 stages, 8..64 channels


@pytest.fixture(scope='module')
def tiny_sd():
    return released_state_dict(*ARCHS['tiny'], seed=1)


@pytest.fixture(scope='module')
def narrow_sd():
    return released_state_dict(NARROW['embed_dim'], NARROW['depths'], seed=2, num_classes=7)


def _write(path, layout, sd):
    if layout == 'bare':
        torch.save(sd, path)
    else:
        path.write_bytes(training_checkpoint(sd))
    return str(path)


def _pretrained(name, path, **kwargs):
    return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=path),
                             **kwargs).eval()


# --------------------------------------------------------------------------
# Registration, structure
# --------------------------------------------------------------------------


def test_registration_is_idempotent():
    code = ('import timm; from mmsnnmlp.models.snnmlp_timm import register_timm_models as r\n'
            'before = timm.is_model("snnmlp_tiny"); first = r(); second = r()\n'
            'print(before, first, second, sorted(timm.list_models("snnmlp*", pretrained=True)))')
    out = subprocess.run([sys.executable, '-W', 'error::UserWarning', '-c', code],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    before, first, second, names = out.stdout.strip().split(' ', 3)
    assert first == str(before == 'False') and second == 'False'
    assert names == str(['snnmlp_base.in1k', 'snnmlp_small.in1k', 'snnmlp_tiny.in1k'])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert register_timm_models() is False
    assert timm.models.model_entrypoint('snnmlp_small') is snnmlp_timm.snnmlp_small


@pytest.mark.parametrize('name, params, drop_path, url', [
    ('snnmlp_tiny', 28_335_736, 0.2, 'snnmlp_tiny_81.88.pt'),
    ('snnmlp_small', 49_703_080, 0.3, 'snnmlp_small_83.30.pt'),
    ('snnmlp_base', 87_897_288, 0.5, 'snnmlp_base_83.59.pt'),
])
def test_variants_match_the_released_models(name, params, drop_path, url):
    model = timm.create_model(name)
    assert isinstance(model, SNNMLPClassifier)
    assert sum(p.numel() for p in model.parameters()) == params
    # stochastic depth rises linearly to the variant's ImageNet value
    probs = [b.drop_path.prob for stage in model.layers for b in stage.blocks]
    assert probs[0] == 0 and probs[-1] == pytest.approx(drop_path)
    cfg = model.pretrained_cfg
    assert cfg['url'] == RELEASE_URL + url and url.startswith(name)
    assert (cfg['interpolation'], cfg['crop_pct'], cfg['input_size']) == ('bicubic', 0.875,
                                                                          (3, 224, 224))
    assert (cfg['num_classes'], cfg['first_conv'], cfg['classifier']) == (1000, 'patch_embed.proj',
                                                                          'head')
    data = timm.data.resolve_data_config(model=model)
    assert data['mean'] == (0.485, 0.456, 0.406) and data['std'] == (0.229, 0.224, 0.225)
    resize = timm.data.create_transform(**data).transforms[0]
    assert resize.size == 256  # short side, then centre crop 224


# --------------------------------------------------------------------------
# Released weights
# --------------------------------------------------------------------------


@pytest.mark.parametrize('layout', ['bare', 'training'])
def test_released_layouts_give_the_reference_logits(tmp_path, tiny_sd, layout, monkeypatch):
    reads = []
    monkeypatch.setattr(snnmlp_timm, 'safe_load',
                        lambda path: reads.append(path) or safe_load(path))
    path = _write(tmp_path / 'snnmlp_tiny_81.88.pt', layout, tiny_sd)
    model = _pretrained('snnmlp_tiny', path)
    assert reads == [path]
    own = model.state_dict()
    assert own.keys() == tiny_sd.keys()
    assert all(torch.equal(own[k], v) for k, v in tiny_sd.items())
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        logits = model.double()(x)
        ref = classifier_logits({k: v.double() for k, v in tiny_sd.items()}, ARCHS['tiny'][1], x)
    assert logits.shape == (2, 1000)
    torch.testing.assert_close(logits, ref, rtol=1e-9, atol=1e-9)


def test_release_url_is_read_by_the_safe_loader(tmp_path, narrow_sd, monkeypatch):
    """pretrained=True without a file: timm downloads the release URL, we read it."""
    path = _write(tmp_path / 'cached.pt', 'training', narrow_sd)
    fetched = []
    monkeypatch.setattr(timm.models._builder, 'download_cached_file',
                        lambda url, **kw: fetched.append(url) or path)
    model = timm.create_model('snnmlp_tiny', pretrained=True, num_classes=7, **NARROW)
    assert fetched == [RELEASE_URL + 'snnmlp_tiny_81.88.pt']
    assert torch.equal(model.head.weight, narrow_sd['head.weight'])


def test_unsafe_pickle_is_refused(tmp_path, narrow_sd):
    marker = tmp_path / 'code_ran'

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    path = tmp_path / 'evil.pt'
    torch.save({'model': narrow_sd, 'extra': Payload()}, path)
    with pytest.raises(CheckpointError, match='Refusing'):
        _pretrained('snnmlp_tiny', str(path), num_classes=7, **NARROW)
    assert not marker.exists()


def test_other_head_and_input_channels_are_adapted(tmp_path, narrow_sd):
    path = _write(tmp_path / 'c.pt', 'bare', narrow_sd)
    model = _pretrained('snnmlp_tiny', path, num_classes=10, in_chans=1, **NARROW)
    own = model.state_dict()
    assert own['head.weight'].shape == (10, 64)
    torch.testing.assert_close(own['patch_embed.proj.weight'],
                               narrow_sd['patch_embed.proj.weight'].sum(1, keepdim=True))
    assert all(torch.equal(own[k], v) for k, v in narrow_sd.items()
               if not k.startswith(('head.', 'patch_embed.proj.weight')))
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 10)


def test_checkpoint_of_another_shape_fails_without_loading_anything(tmp_path, narrow_sd):
    path = _write(tmp_path / 'narrow.pt', 'training', narrow_sd)
    with pytest.raises(CheckpointError, match=r'missing keys .*\n?.*shape mismatch'):
        _pretrained('snnmlp_tiny', path)  # full-width tiny
    model = timm.create_model('snnmlp_tiny', num_classes=7, embed_dim=8, depths=(1, 1, 1, 1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r'unexpected keys \(\d+\): layers\.2\.blocks\.1'):
        load_released_weights(model, narrow_sd)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # a head of the right size may not be absent (only one of another size is replaced)
    headless = {k: v for k, v in narrow_sd.items() if not k.startswith('head.')}
    model = timm.create_model('snnmlp_tiny', num_classes=7, **NARROW)
    with pytest.raises(CheckpointError, match=r'missing keys \(2\): head.weight, head.bias'):
        load_released_weights(model, headless)


def test_create_from_checkpoint_reads_the_architecture(tmp_path, narrow_sd):
    path = _write(tmp_path / 'c.pt', 'training', narrow_sd)
    model, variant = create_from_checkpoint(path)
    assert variant is None
    assert (model.embed_dim, model.depths, model.num_classes) == (8, (1, 1, 2, 1), 7)
    assert not model.training
    with pytest.raises(CheckpointError, match='head of 7 classes, not 1000'):
        create_from_checkpoint(path, num_classes=1000)
    with pytest.raises(CheckpointError, match='does not fit'):
        create_from_checkpoint(path, 'snnmlp_small')
    backbone = {k: v for k, v in narrow_sd.items() if not k.startswith(('head.', 'norm.'))}
    with pytest.raises(CheckpointError, match='backbone or detector checkpoint'):
        create_from_checkpoint(_write(tmp_path / 'backbone.pt', 'bare', backbone))


# --------------------------------------------------------------------------
# timm's model API
# --------------------------------------------------------------------------


@pytest.mark.parametrize('feature_cls', ['getter', 'hook'])
@pytest.mark.parametrize('size', [(64, 96), (61, 95), (37, 130)])
def test_features_only_at_non_square_sizes(tmp_path, narrow_sd, feature_cls, size):
    path = _write(tmp_path / 'c.pt', 'training', narrow_sd)
    kwargs = dict(features_only=True, num_classes=7, **NARROW)
    if feature_cls == 'hook':
        kwargs['feature_cls'] = 'hook'
    net = _pretrained('snnmlp_tiny', path, **kwargs)
    assert net.feature_info.channels() == [8, 16, 32, 64]
    assert net.feature_info.reduction() == [4, 8, 16, 32]
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        feats = net.double()(x)
    assert [tuple(f.shape) for f in feats] == [
        (2, c, math.ceil(size[0] / r), math.ceil(size[1] / r))
        for c, r in zip([8, 16, 32, 64], [4, 8, 16, 32])]
    if size == (64, 96):  # the reference runs even sizes only
        refs = stage_features({k: v.double() for k, v in narrow_sd.items()}, NARROW['depths'], x)
        for feat, ref in zip(feats, refs):
            torch.testing.assert_close(feat, ref, rtol=1e-9, atol=1e-9)
    else:  # odd sizes: the same features as the unwrapped classifier's
        full = _pretrained('snnmlp_tiny', path, num_classes=7, **NARROW).double()
        with torch.no_grad():
            for feat, ref in zip(feats, full.forward_intermediates(x, intermediates_only=True)):
                torch.testing.assert_close(feat, ref, rtol=0, atol=0)


def test_pruned_features_equal_the_full_models():
    torch.manual_seed(0)
    full = timm.create_model('snnmlp_tiny', **NARROW).eval()
    pruned = timm.create_model('snnmlp_tiny', features_only=True, out_indices=(0, 2),
                               **NARROW).eval()
    keys = pruned.model.state_dict().keys()
    assert not any(k.startswith(('layers.3', 'layers.2.downsample', 'norm', 'head')) for k in keys)
    pruned.model.load_state_dict({k: v for k, v in full.state_dict().items() if k in keys})
    assert pruned.feature_info.channels() == [8, 32]
    x = torch.randn(1, 3, 50, 70)
    with torch.no_grad():
        ref = full.forward_intermediates(x, indices=[0, -2], intermediates_only=True)
        for feat, r in zip(pruned(x), ref):
            torch.testing.assert_close(feat, r, rtol=0, atol=0)


def test_heads_pooling_and_classifier_reset():
    torch.manual_seed(0)
    model = timm.create_model('snnmlp_tiny', num_classes=5, **NARROW).eval()
    x = torch.randn(3, 3, 40, 56)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
        pooled = model.forward_head(feats, pre_logits=True)
        assert feats.shape == (3, 64, 2, 2) and pooled.shape == (3, 64)
        torch.testing.assert_close(pooled, feats.mean((2, 3)))
        torch.testing.assert_close(logits, F.linear(pooled, model.head.weight, model.head.bias))
        last, inter = model.forward_intermediates(x, indices=1, norm=True)
        torch.testing.assert_close(last, feats)
        torch.testing.assert_close(inter[0], feats)  # norm=True: the last stage through `norm`

        head = model.get_classifier()
        model.reset_classifier(0)
        assert isinstance(model.get_classifier(), torch.nn.Identity) and model.num_classes == 0
        torch.testing.assert_close(model(x), pooled)
        model.reset_classifier(4, global_pool='')
        dense = model(x)  # no pooling: logits per location
        assert dense.shape == (3, 4, 2, 2) and model.get_classifier() is not head
        torch.testing.assert_close(dense.mean((2, 3)), model.head(pooled), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match='global_pool'):
        model.reset_classifier(4, global_pool='max')
    with pytest.raises(ValueError, match=r'\(N, 3, H, W\)'):
        model(torch.randn(1, 4, 32, 32))


def test_grad_checkpointing_keeps_gradients():
    torch.manual_seed(0)
    model = timm.create_model('snnmlp_tiny', num_classes=3, drop_path_rate=0.0, **NARROW)
    x = torch.randn(2, 3, 32, 48)

    def grads():
        model.zero_grad()
        model(x).square().sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    plain = grads()
    model.set_grad_checkpointing()
    assert all(b.with_cp for stage in model.layers for b in stage.blocks)
    for a, b in zip(plain, grads()):
        torch.testing.assert_close(a, b)
    groups = timm.models.group_parameters(model, model.group_matcher())
    order = list(groups)
    assert order[0] == 0 and 'head.weight' in groups[order[-1]]
    merge = [n for n, names in groups.items() if 'layers.0.downsample.reduction.weight' in names]
    block = [n for n, names in groups.items() if 'layers.0.blocks.0.norm1.weight' in names]
    stage1 = [n for n, names in groups.items() if 'layers.1.blocks.0.norm1.weight' in names]
    assert order.index(block[0]) < order.index(merge[0]) < order.index(stage1[0])
