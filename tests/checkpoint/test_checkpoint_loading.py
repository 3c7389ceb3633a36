import pickle
import re

import pytest
import torch

from mmsnnmlp.models import SNNMLP, CheckpointError, safe_load
from helpers.released_layout import (ARCHS, released_state_dict, stage_features,
                                     training_checkpoint)
from helpers.unpicklers import UNPICKLERS, Payload


@pytest.fixture(scope='module')
def tiny_released():
    embed, depths = ARCHS['tiny']
    return released_state_dict(embed, depths, seed=1)


def _pretrained(path, **kwargs):
    model = SNNMLP('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)), **kwargs)
    model.init_weights()
    return model


@pytest.mark.parametrize('layout', ['bare', 'training'])
def test_released_checkpoint_loads_and_reproduces_network(tmp_path, tiny_released, layout):
    path = tmp_path / 'snnmlp_tiny_81.88.pt'
    if layout == 'bare':
        torch.save(tiny_released, path)
    else:
        path.write_bytes(training_checkpoint(tiny_released))
    model = _pretrained(path).eval()
    own = model.state_dict()
    for key, value in tiny_released.items():
        if key.startswith(('head.', 'norm.')):
            assert key not in own
        else:
            assert torch.equal(own[key], value), key
    # tau/Vth came from the checkpoint, not the defaults
    assert own['layers.2.blocks.3.lif_module.lif2.tau'].item() != pytest.approx(0.25)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        outs = model(x)
        refs = stage_features(tiny_released, ARCHS['tiny'][1], x)
    for out, ref in zip(outs, refs):
        torch.testing.assert_close(out, torch.nn.functional.group_norm(ref, 1), rtol=1e-4, atol=1e-4)


@UNPICKLERS
def test_training_layout_loads_without_yacs(tmp_path, tiny_released, restricted):
    path = tmp_path / 'ckpt.pt'
    path.write_bytes(training_checkpoint(tiny_released))
    with pytest.raises(ImportError):
        import yacs  # noqa: F401  (the stand-in must not be needed)
    loaded = safe_load(str(path), restricted=restricted)
    assert type(loaded['config']).__module__ == 'collections'
    assert loaded['config']['TRAIN']['EPOCHS'] == 300
    assert loaded['epoch'] == 299


def test_detector_and_backbone_formats(tmp_path, tiny_released):
    src = _pretrained(_save(tmp_path / 'a.pt', tiny_released))
    # a full detector checkpoint (mmengine layout)
    det = {'meta': {'epoch': 1}, 'state_dict': {
        **{f'backbone.{k}': v for k, v in src.state_dict().items()},
        'neck.lateral_convs.0.conv.weight': torch.zeros(1)}}
    model = _pretrained(_save(tmp_path / 'det.pth', det))
    for key, value in src.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    # a backbone-format file, loaded into a model returning fewer stages
    model = _pretrained(_save(tmp_path / 'bb.pth', {'state_dict': src.state_dict()}),
                        out_indices=(2, 3))
    assert torch.equal(model.state_dict()['layers.3.blocks.1.mlp.fc2.weight'],
                       src.state_dict()['layers.3.blocks.1.mlp.fc2.weight'])


def _save(path, obj):
    torch.save(obj, path)
    return path


def test_other_variant_fails_loudly_without_half_loading(tmp_path):
    embed, depths = ARCHS['small']
    path = _save(tmp_path / 'snnmlp_small_83.30.pt', released_state_dict(embed, depths, seed=2))
    model = SNNMLP('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        model.init_weights()
    msg = str(info.value)
    assert 'depths=(2, 2, 18, 2)' in msg and 'depths=(2, 2, 6, 2)' in msg
    assert 'unexpected keys (336)' in msg and 'layers.2.blocks.6.norm1.weight' in msg
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_wider_variant_reports_shapes(tmp_path):
    path = _save(tmp_path / 'base.pt', released_state_dict(128, (2, 2, 6, 2), seed=3))
    with pytest.raises(CheckpointError, match=r'shape mismatch .*patch_embed.*\(128, 3, 4, 4\) vs model \(96, 3, 4, 4\)'):
        _pretrained(path)


def test_missing_key_is_an_error(tmp_path, tiny_released):
    sd = dict(tiny_released)
    sd.pop('layers.1.blocks.0.lif_module.lif1.Vth')
    with pytest.raises(CheckpointError, match=r'missing keys \(1\): layers.1.blocks.0.lif_module.lif1.Vth'):
        _pretrained(_save(tmp_path / 'm.pt', sd))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='Checkpoint not found: .*nope.pth'):
        _pretrained(tmp_path / 'nope.pth')


def test_truncated_file(tmp_path, tiny_released):
    full = _save(tmp_path / 'full.pt', {k: tiny_released[k] for k in list(tiny_released)[:20]})
    cut = tmp_path / 'cut.pt'
    cut.write_bytes(full.read_bytes()[:-500])
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        safe_load(str(cut))


@pytest.mark.parametrize('content', [b'hello, I am a config file\n', b'\x89PNG\r\n\x1a\n0000'])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / 'x.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match='Not a PyTorch checkpoint'):
        safe_load(str(path))
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(CheckpointError, match='empty'):
        safe_load(str(empty))


def test_state_dict_missing(tmp_path):
    path = _save(tmp_path / 'x.pth', {'epoch': 3, 'notes': 'no weights here'})
    with pytest.raises(CheckpointError, match='No model state dict found'):
        _pretrained(path)


@UNPICKLERS
@pytest.mark.parametrize('legacy', [False, True])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, legacy, tiny_released, restricted):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pt'
    payload = {'model': {'patch_embed.proj.weight': torch.zeros(1)}, 'x': Payload(marker)}
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(CheckpointError, match='Refusing to load .*could run code'):
        safe_load(str(path), restricted=restricted)
    with pytest.raises(CheckpointError, match='Refusing to load'):
        _pretrained(path)
    assert not marker.exists()
    # sanity: the payload really would run under a plain unpickler
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


# -- padding of odd sizes, checked by value --------------------------------
SMALL_ARCH = dict(embed_dims=16, depths=(1, 1, 2, 1))


@pytest.fixture(scope='module')
def small_float64(tmp_path_factory):
    """(loaded model, released-layout state dict) of a narrow SNN-MLP, both in
    float64 so that no spike can flip between the model and the reference."""
    sd = released_state_dict(SMALL_ARCH['embed_dims'], SMALL_ARCH['depths'], seed=6)
    path = _save(tmp_path_factory.mktemp('small') / 'small.pt', sd)
    model = SNNMLP(SMALL_ARCH, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    return model.double().eval(), {k: v.double() for k, v in sd.items()}


@pytest.mark.parametrize('hw', [(61, 45), (37, 83), (3, 7)])
def test_odd_input_sizes_match_reference(small_float64, hw):
    """Sizes not divisible by 4 (PatchEmbed pads) that give odd stage sizes
    (PatchMerging pads): 61x45 -> stages 16x12, 8x6, 4x3, 2x2; 37x83 -> 10x21,
    5x11, 3x6, 2x3; 3x7 -> 1x2, 1x1, 1x1, 1x1."""
    model, sd = small_float64
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    with torch.no_grad():
        outs = model(x)
        refs = stage_features(sd, SMALL_ARCH['depths'], x)
    assert [o.shape[-2:] for o in outs] == [r.shape[-2:] for r in refs]
    for out, ref in zip(outs, refs):
        torch.testing.assert_close(out, torch.nn.functional.group_norm(ref, 1),
                                   rtol=1e-9, atol=1e-9)


# -- strict loading: every key by name -------------------------------------
@pytest.fixture(scope='module')
def tiny_released_file(tmp_path_factory, tiny_released):
    return _save(tmp_path_factory.mktemp('released') / 'snnmlp_tiny.pt', tiny_released)


MISSING_KEYS = [
    'patch_embed.norm.bias',                            # a norm bias
    'layers.0.blocks.1.norm1.weight',                   # a norm weight
    'layers.1.blocks.0.lif_module.norm3.bias',          # a norm inside the LIF module
    'layers.2.downsample.norm.weight',                  # a downsample norm
    'layers.0.downsample.reduction.weight',             # a conv without bias
    'layers.2.blocks.4.lif_module.dw1.weight',          # a depthwise conv
    'layers.3.blocks.1.mlp.fc2.bias',                   # a conv bias
    'layers.1.blocks.1.lif_module.lif2.tau',            # tau
    'layers.3.blocks.0.lif_module.lif1.Vth',            # Vth
]
UNEXPECTED_KEYS = [
    'layers.0.blocks.2.norm1.weight',                   # a block tiny does not have
    'layers.3.downsample.norm.weight',                  # the last stage has no merging
    'layers.1.blocks.0.norm2.running_mean',             # a norm buffer GroupNorm lacks
    'layers.2.blocks.0.lif_module.lif1.threshold',      # a LIF parameter under another name
    'patch_embed.proj2.weight',                         # a conv
]


@pytest.mark.parametrize('key', MISSING_KEYS)
def test_each_missing_key_is_refused_by_name(tmp_path, tiny_released, key):
    sd = dict(tiny_released)
    sd.pop(key)
    model = SNNMLP('tiny', init_cfg=dict(type='Pretrained',
                                         checkpoint=str(_save(tmp_path / 'm.pt', sd))))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=rf'missing keys \(1\): {re.escape(key)}$'):
        model.init_weights()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize('key', UNEXPECTED_KEYS)
def test_each_unexpected_key_is_refused_by_name(tmp_path, tiny_released, key):
    sd = dict(tiny_released)
    sd[key] = torch.ones(96)
    with pytest.raises(CheckpointError, match=rf'unexpected keys \(1\): {re.escape(key)}$'):
        _pretrained(_save(tmp_path / 'u.pt', sd))


def test_output_norms_load_from_a_detector_checkpoint(tmp_path, tiny_released_file):
    src = _pretrained(tiny_released_file)
    gen = torch.Generator().manual_seed(4)
    for p in src.out_norms.parameters():  # not the GroupNorm defaults 1 and 0
        p.data = torch.randn(p.shape, generator=gen)
    det = {'meta': {'epoch': 3}, 'state_dict': {
        **{f'backbone.{k}': v for k, v in src.state_dict().items()},
        'neck.fpn_convs.0.conv.weight': torch.zeros(2)}}
    path = _save(tmp_path / 'det.pth', det)
    expected = src.state_dict()
    for out_indices in ((0, 1, 2, 3), (1, 3)):
        model = _pretrained(path, out_indices=out_indices)
        own = model.state_dict()
        keys = [k for k in own if k.startswith('out_norms.')]
        assert len(keys) == 2 * len(out_indices)
        for key in keys:
            assert torch.equal(own[key], expected[key]), key


@pytest.mark.parametrize('layout', ['bare', 'model', 'state_dict', 'detector'])
def test_data_parallel_module_prefix_is_stripped(tmp_path, tiny_released, layout):
    if layout == 'detector':
        payload = {'state_dict': {f'module.backbone.{k}': v for k, v in tiny_released.items()
                                  if not k.startswith(('head.', 'norm.'))}}
    else:
        sd = {f'module.{k}': v for k, v in tiny_released.items()}
        payload = sd if layout == 'bare' else {layout: sd}
    own = _pretrained(_save(tmp_path / 'dp.pth', payload)).state_dict()
    for key, value in tiny_released.items():
        if not key.startswith(('head.', 'norm.')):
            assert torch.equal(own[key], value), key


def test_legacy_pickle_checkpoint_loads(tmp_path, tiny_released):
    """torch.save(..., _use_new_zipfile_serialization=False): no zip archive."""
    path = tmp_path / 'legacy.pth'
    torch.save({'model': tiny_released}, path, _use_new_zipfile_serialization=False)
    assert path.read_bytes()[:2] != b'PK'
    own = _pretrained(path).state_dict()
    for key, value in tiny_released.items():
        if not key.startswith(('head.', 'norm.')):
            assert torch.equal(own[key], value), key
