"""ImageNet evaluation (mmsnnmlp.analysis.imagenet) and its tool, eval_imagenet.py."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmsnnmlp.analysis.imagenet import (LabelledImages, class_indices, evaluate,
                                        imagenet_synsets, scan_image_folder)
from mmsnnmlp.datasets import DataError
from helpers.released_layout import ARCHS, released_state_dict, training_checkpoint

pytestmark = pytest.mark.usefixtures('one_thread', 'timm_registered')  # tests/conftest.py

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NARROW = dict(embed_dim=8, depths=(1, 1, 2, 1))  # 4 stages, 8..64 channels


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


def _load_tool(rel_path):
    spec = importlib.util.spec_from_file_location(osp.basename(rel_path)[:-3],
                                                  osp.join(ROOT, rel_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
