"""tools/analysis_tools/visualize_lif.py (firing rates of every LIF neuron) and the ImageNet
eval tool on an ablation variant's model config.

The independent reference: a float32 numpy spike count per LIF call.
"""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import timm
import torch
from mmengine.config import Config
from PIL import Image

from mmsnnmlp.models.snnmlp_timm import register_timm_models
from mmsnnmlp.ops import LIF

pytestmark = pytest.mark.usefixtures('one_thread')  # tests/conftest.py

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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
    from mmsnnmlp.analysis.lif_recorder import dense_model
    from mmsnnmlp.engine.launch import library_of
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
    network = dense_model(osp.join(ROOT, config), str(ckpt), 'cpu')
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
