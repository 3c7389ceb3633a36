import os
import pickle

import pytest
import torch

from mmsnnmlp.models import SNNMLP, CheckpointError, safe_load
from released_layout import (ARCHS, released_state_dict, stage_features,
                             training_checkpoint)
from unpicklers import UNPICKLERS


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


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


@UNPICKLERS
@pytest.mark.parametrize('legacy', [False, True])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, legacy, tiny_released, restricted):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pt'
    payload = {'model': {'patch_embed.proj.weight': torch.zeros(1)}, 'x': _Payload(marker)}
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(CheckpointError, match='Refusing to load .*could run code'):
        safe_load(str(path), restricted=restricted)
    with pytest.raises(CheckpointError, match='Refusing to load'):
        _pretrained(path)
    assert not marker.exists()
    # sanity: the payload really would run under a plain unpickler
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()
