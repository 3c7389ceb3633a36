"""timm classifiers (mmsnnmlp.models.snnmlp_timm) and the ImageNet eval tool."""
import importlib.util
import json
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
from mmsnnmlp.utils.classification import (DataError, LabelledImages, class_indices, evaluate,
                                           imagenet_synsets, scan_image_folder)
from released_layout import (ARCHS, classifier_logits, released_state_dict, stage_features,
                             training_checkpoint)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NARROW = dict(embed_dim=8, depths=(1, 1, 2, 1))  # 4 stages, 8..64 channels


@pytest.fixture(scope='module', autouse=True)
def registered():
    register_timm_models()


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Small models on shared cores: one thread is faster and steadier."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


ONE_THREAD_ENV = dict(os.environ, OMP_NUM_THREADS='1')


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


def _load_tool(rel_path):
    spec = importlib.util.spec_from_file_location(osp.basename(rel_path)[:-3],
                                                  osp.join(ROOT, rel_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


# --------------------------------------------------------------------------
# Evaluation: class indices, metrics, the tool
# --------------------------------------------------------------------------


def test_class_indices():
    synsets = imagenet_synsets()
    assert len(synsets) == 1000 and synsets == sorted(synsets) and synsets[0] == 'n01440764'
    index, how = class_indices(['n15075141', 'n01443537'], 1000)
    assert index == {'n01443537': 1, 'n15075141': 999} and '2 of them' in how
    index, how = class_indices(['b', 'a', 'c'], 3)
    assert index == {'a': 0, 'b': 1, 'c': 2} and how == 'sorted folder names'
    assert class_indices(['n01443537', 'n01440764'], 2)[0] == {'n01440764': 0, 'n01443537': 1}
    with pytest.raises(DataError, match='not synsets'):
        class_indices(['n01443537', 'cat'], 1000)
    with pytest.raises(DataError, match='3 class folders'):
        class_indices(['a', 'b', 'c'], 4)
    assert class_indices([f'c{i:04d}' for i in range(1000)], 1000)[0]['c0999'] == 999


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match='not found'):
        scan_image_folder(str(tmp_path / 'nope'))
    (tmp_path / 'ILSVRC2012_val_00000001.JPEG').write_bytes(b'')
    with pytest.raises(DataError, match='sorted into one folder per synset'):
        scan_image_folder(str(tmp_path))
    (tmp_path / 'n01440764').mkdir()
    with pytest.raises(DataError, match='hold no images'):
        scan_image_folder(str(tmp_path))
    bad = tmp_path / 'n01440764' / 'broken.JPEG'
    bad.write_bytes(b'not an image')
    assert scan_image_folder(str(tmp_path)) == {'n01440764': [str(bad)]}
    with pytest.raises(DataError, match=f'Cannot read image {bad}'):
        LabelledImages([(str(bad), 0)])[0]


def test_evaluate_counts_top_k():
    """Image i carries i in its pixels; the model ranks its target at place rank[i]."""
    ranks = [0, 0, 1, 4, 5, 9, 0, 2]
    targets = torch.tensor([3, 7, 0, 9, 1, 2, 5, 6])
    table = torch.zeros(len(ranks), 10)
    for i, (rank, target) in enumerate(zip(ranks, targets)):
        others = [c for c in range(10) if c != target]
        order = others[:rank] + [int(target)] + others[rank:]
        table[i, order] = torch.arange(10, 0, -1, dtype=torch.float)

    class Lookup(torch.nn.Module):
        def forward(self, images):
            return table[images[:, 0, 0, 0].long()]

    images = torch.arange(len(ranks)).float().view(-1, 1, 1, 1).expand(-1, 3, 2, 2)
    loader = torch.utils.data.DataLoader(list(zip(images, targets)), batch_size=3)
    result = evaluate(Lookup(), loader, 'cpu', progress=False)
    assert result['top1'] == 100 * 3 / 8 and result['top5'] == 100 * 6 / 8
    assert result['images'] == 8 and result['images_per_s'] > 0
    table = torch.zeros(len(ranks), 3)
    table[:, 0] = 1  # three classes, class 0 first: two hits, and no top-5
    few = torch.utils.data.DataLoader(list(zip(images[:4], [0, 1, 0, 2])), batch_size=4)
    result = evaluate(Lookup(), few, 'cpu', progress=False)
    assert (result['top1'], result['top5'], result['images'], result['num_classes']) == (
        50.0, None, 4, 3)
    with pytest.raises(ValueError, match='target 7 .* 3 classes'):
        evaluate(Lookup(), loader, 'cpu', progress=False)


def _toy(out, classes=3, val=3, seed=0):
    tool = _load_tool('tools/misc/make_toy_imagenet.py')
    tool.main(['--out', str(out), '--classes', str(classes), '--train-per-class', '2',
               '--val-per-class', str(val), '--min-size', '24', '--max-size', '40',
               '--seed', str(seed)])
    return out


def test_toy_imagenet_is_deterministic(tmp_path):
    a, b = _toy(tmp_path / 'a'), _toy(tmp_path / 'b')
    files = sorted(osp.relpath(osp.join(d, f), a) for d, _, fs in os.walk(a) for f in fs)
    assert len(files) == 3 * (2 + 3) + 1 and 'val/n90000002/ILSVRC2012_val_00000009.JPEG' in files
    assert all(open(a / f, 'rb').read() == open(b / f, 'rb').read() for f in files)
    assert not set(os.listdir(a / 'val')) & set(imagenet_synsets())


def test_eval_tool_scores_imagenet_synsets_by_their_index(tmp_path, tiny_sd, capsys):
    """A 1000-class checkpoint on 3 real synset folders: targets are ImageNet indices.

    The head is rigged to rank classes 999, 1, 0 first for every image, so with
    the right targets top-1 is the share of folder n15075141 (index 999; in
    sorted-folder order it would be 2, and top-1 0)."""
    toy = _toy(tmp_path / 'toy', classes=3, val=2)
    val = tmp_path / 'val'
    val.mkdir()
    for k, synset in enumerate(['n01440764', 'n01443537', 'n15075141']):
        os.rename(toy / 'val' / f'n9000000{k}', val / synset)
    sd = dict(tiny_sd, **{'head.weight': torch.zeros(1000, 768), 'head.bias': torch.zeros(1000)})
    sd['head.bias'][[999, 1, 0]] = torch.tensor([3.0, 2.0, 1.0])
    path = _write(tmp_path / 'snnmlp_tiny_81.88.pt', 'training', sd)
    tool = _load_tool('tools/analysis_tools/eval_imagenet.py')
    result = tool.main([path, '--data', str(val), '--device', 'cpu', '--workers', '0',
                        '--batch-size', '4', '--img-size', '64', '--no-progress'])
    out = capsys.readouterr().out
    assert result['images'] == 6 and result['top1'] == pytest.approx(100 / 3)
    assert result['top5'] == 100.0
    assert 'model: snnmlp_tiny' in out and 'ImageNet-1k synset order, 3 of them' in out
    assert ('reported for snnmlp_tiny on the 50,000 val images: 81.88 % by the released '
            'checkpoint, 81.9 % in the paper; this run scored 6 images') in out
    assert 'resize 73 (bicubic), centre crop 64' in out


def test_eval_tool_is_deterministic(tmp_path, narrow_sd, capsys):
    toy = _toy(tmp_path / 'toy', classes=7, val=2)
    path = _write(tmp_path / 'narrow.pt', 'bare', narrow_sd)
    args = [path, '--data', str(toy / 'val'), '--device', 'cpu', '--batch-size', '5',
            '--img-size', '32']
    cli = subprocess.run([sys.executable, osp.join(ROOT, 'tools/analysis_tools/eval_imagenet.py')]
                         + args + ['--workers', '1', '--json', str(tmp_path / 'r.json')],
                         capture_output=True, text=True, cwd=ROOT, env=ONE_THREAD_ENV)
    assert cli.returncode == 0, cli.stderr
    assert 'custom SNN-MLP (embed_dim=8, depths=(1, 1, 2, 1))' in cli.stdout
    assert 'sorted folder names' in cli.stdout and 'reported for' not in cli.stdout
    first = json.load(open(tmp_path / 'r.json'))
    again = _load_tool('tools/analysis_tools/eval_imagenet.py').main(
        args + ['--workers', '0', '--no-progress'])
    for key in ('top1', 'top5', 'images', 'num_classes'):
        assert first[key] == again[key], key
    assert first['images'] == 14 and first['input_size'] == [3, 32, 32]
    with pytest.raises(SystemExit, match='head of 7 classes, not 1000'):
        _load_tool('tools/analysis_tools/eval_imagenet.py').main(args + ['--num-classes', '1000'])


@pytest.mark.slow
def test_toy_trained_classifier_scores_above_chance(tmp_path):
    """Generate 5 toy classes, train briefly on CPU, score twice with the eval tool."""
    def run(*args):
        out = subprocess.run([sys.executable] + [str(a) for a in args], capture_output=True,
                             text=True, cwd=ROOT, timeout=600, env=ONE_THREAD_ENV)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        return out.stdout

    data = tmp_path / 'toy'
    run('tools/misc/make_toy_imagenet.py', '--out', data, '--classes', 5,
        '--train-per-class', 24, '--val-per-class', 8, '--min-size', 40, '--max-size', 64)
    ckpt = tmp_path / 'toy_cls.pt'
    run('tools/misc/train_toy_classifier.py', '--data', data, '--out', ckpt, '--iters', 100,
        '--batch-size', 16, '--img-size', 48)
    results = []
    for i in range(2):
        run('tools/analysis_tools/eval_imagenet.py', ckpt, '--data', data / 'val', '--device',
            'cpu', '--img-size', 48, '--workers', 0, '--json', tmp_path / f'{i}.json')
        results.append(json.load(open(tmp_path / f'{i}.json')))
    assert results[0]['images'] == 40 and results[0]['top1'] >= 60  # chance: 20
    assert (results[0]['top1'], results[0]['top5']) == (results[1]['top1'], results[1]['top5'])
