"""End to end on generated toy data with the tools a user runs (slow: CI runs them).

Train a few iterations, checkpoint, resume, test with the real COCO metric and
mIoU, run both inference APIs, and a 2-process CPU (gloo) dist_train.sh run."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py')
SEG = osp.join(ROOT, 'configs/toy/snnmlp-toy_upernet_toy-ade.py')
pytestmark = pytest.mark.slow

DET_SHORT = ['train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
             'default_hooks.logger.interval=1']
SEG_SHORT = ['train_dataloader.batch_size=2', 'default_hooks.logger.interval=1',
             'default_hooks.checkpoint.interval=2']


def tool(cwd, *args, ok=True):
    cmd = [sys.executable, osp.join(ROOT, 'tools', args[0])] + [str(a) for a in args[1:]]
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    if ok:
        assert out.returncode == 0, f'{cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}'
    return out


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    """A folder with data/toy in it: the toy configs' relative data roots resolve there."""
    cwd = tmp_path_factory.mktemp('toy')
    tool(cwd, 'misc/make_toy_data.py', '--out', 'data/toy', '--num-train', 6, '--num-val', 4,
         '--size', 96, '--seed', 3)
    return cwd


def _checkpoint(path):
    from mmsnnmlp.models import safe_load
    return safe_load(path)


def _meta(path):
    return _checkpoint(path)['meta']


def test_toy_data_layout_is_deterministic(toy, tmp_path):
    tool(tmp_path, 'misc/make_toy_data.py', '--out', 'again', '--num-train', 6, '--num-val', 4,
         '--size', 96, '--seed', 3)
    a = json.load(open(toy / 'data/toy/coco/annotations/instances_train2017.json'))
    b = json.load(open(tmp_path / 'again/coco/annotations/instances_train2017.json'))
    assert a == b and len(a['images']) == 6 and a['annotations']
    kinds = {type(ann['segmentation']).__name__ for ann in a['annotations']}
    assert kinds <= {'list', 'dict'}
    ade = toy / 'data/toy/ade/ADEChallengeData2016'
    assert len(os.listdir(ade / 'images/validation')) == 4
    assert len(os.listdir(ade / 'annotations/training')) == 6


def _assert_drawings(work, show_dir, images):
    """--show-dir: one decodable drawing per test image, inside the work dir
    (mmdet names it after the image, mmseg puts the image name inside)."""
    import cv2
    drawings = [p for p in work.rglob('*') if p.suffix in ('.jpg', '.png')
                and show_dir in p.relative_to(work).parts[:-1]]
    for image in os.listdir(images):
        mine = [p for p in drawings if image in p.name]
        assert len(mine) == 1, (image, sorted(map(str, drawings)))
        assert cv2.imread(str(mine[0])) is not None
    assert len(drawings) == len(os.listdir(images))


def test_detection_train_resume_test_infer(toy):
    work = toy / 'work_det'
    tool(toy, 'train.py', DET, '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1',
         'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1', *DET_SHORT)
    assert _meta(work / 'epoch_1.pth')['epoch'] == 1
    # resume: continues from epoch 1 to 2 (3 iterations per epoch)
    out = tool(toy, 'train.py', DET, '--work-dir', work, '--resume', work / 'epoch_1.pth',
               '--cfg-options', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
               'default_hooks.checkpoint.interval=1', *DET_SHORT)
    assert 'resumed epoch: 1' in out.stdout + out.stderr
    meta = _meta(work / 'epoch_2.pth')
    assert (meta['epoch'], meta['iter']) == (2, 6)
    metrics = work / 'metrics.json'
    tool(toy, 'test.py', DET, work / 'epoch_2.pth', '--work-dir', work, '--metrics-json',
         metrics, '--out', work / 'results.pkl', '--show-dir', 'drawings',
         '--cfg-options', *DET_SHORT)
    result = json.load(open(metrics))
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'):
        assert 0.0 <= result[key] <= 1.0
    assert (work / 'results.pkl').stat().st_size > 0
    _assert_drawings(work, 'drawings', toy / 'data/toy/coco/val2017')
    image = sorted((toy / 'data/toy/coco/val2017').iterdir())[0]
    for api in ('inferencer', 'functional'):
        drawing = work / f'{api}.png'
        out = tool(toy, 'demo/image_demo.py', image, DET, work / 'epoch_2.pth', '--api', api,
                   '--out-file', drawing, '--score-thr', 0.0)
        assert drawing.stat().st_size > 0 and 'objects above the threshold' in out.stdout


def test_segmentation_train_resume_test_infer(toy):
    work = toy / 'work_seg'
    tool(toy, 'train.py', SEG, '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=2',
         'train_cfg.val_interval=2', *SEG_SHORT)
    assert _meta(work / 'iter_2.pth')['iter'] == 2
    out = tool(toy, 'train.py', SEG, '--work-dir', work, '--resume', '--cfg-options',
               'train_cfg.max_iters=4', 'train_cfg.val_interval=4', *SEG_SHORT)
    assert 'resumed epoch: 0, iter: 2' in out.stdout + out.stderr
    assert _meta(work / 'iter_4.pth')['iter'] == 4
    metrics = work / 'metrics.json'
    tool(toy, 'test.py', SEG, work / 'iter_4.pth', '--work-dir', work, '--metrics-json', metrics,
         '--show-dir', 'drawings')
    assert 0.0 <= json.load(open(metrics))['mIoU'] <= 100.0
    _assert_drawings(work, 'drawings', toy / 'data/toy/ade/ADEChallengeData2016/images/validation')
    # the paper's multi-scale + flip test runs too
    tool(toy, 'test.py', SEG, work / 'iter_4.pth', '--work-dir', work, '--tta')
    image = sorted((toy / 'data/toy/ade/ADEChallengeData2016/images/validation').iterdir())[0]
    for api in ('inferencer', 'functional'):
        drawing = work / f'{api}.png'
        out = tool(toy, 'demo/image_demo.py', image, SEG, work / 'iter_4.pth', '--api', api,
                   '--out-file', drawing)
        assert drawing.stat().st_size > 0 and 'classes in the prediction' in out.stdout


def test_dist_train_two_cpu_processes(toy, free_port):
    work = toy / 'work_dist'
    env = dict(os.environ, PORT=str(free_port), OMP_NUM_THREADS='1',
               PYTHON=sys.executable)
    cmd = ['bash', osp.join(ROOT, 'tools/dist_train.sh'), SEG, '2', '--work-dir', str(work),
           '--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2', *SEG_SHORT]
    out = subprocess.run(cmd, cwd=toy, capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    meta = _meta(work / 'iter_2.pth')
    assert meta['iter'] == 2
    log = out.stdout + out.stderr
    assert 'Distributed training: True' in log and 'GPU number: 2' in log  # mmengine's words


def test_dist_train_detection_two_cpu_processes(toy, free_port):
    """The toy Mask R-CNN on 2 CPU processes (gloo) for one epoch, with
    --auto-scale-lr: 2 processes x 2 images against the config's base batch of
    16 scale the LR by 0.25 (mmdet itself is not bitwise equivalent across
    process counts, so only completion and the LR are checked)."""
    work = toy / 'work_dist_det'
    env = dict(os.environ, PORT=str(free_port), OMP_NUM_THREADS='1', PYTHON=sys.executable)
    cmd = ['bash', osp.join(ROOT, 'tools/dist_train.sh'), DET, '2', '--work-dir', str(work),
           '--auto-scale-lr', '--cfg-options', 'train_cfg.max_epochs=1', 'val_cfg=None',
           'val_dataloader=None', 'val_evaluator=None', 'default_hooks.checkpoint.interval=1',
           'train_dataloader.batch_size=2', 'default_hooks.logger.interval=1']
    out = subprocess.run(cmd, cwd=toy, capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'Scaling the original LR by 0.25' in log
    ckpt = _checkpoint(work / 'epoch_1.pth')
    assert (ckpt['meta']['epoch'], ckpt['meta']['iter']) == (1, 2)  # 6 images / (2 x 2)
    groups = ckpt['optimizer']['param_groups']
    assert groups and all(g['initial_lr'] == pytest.approx(2e-3 * 4 / 16) for g in groups)


def test_missing_data_root_says_how_to_prepare(tmp_path):
    out = tool(tmp_path, 'train.py', DET, '--work-dir', tmp_path / 'w', ok=False)
    assert out.returncode != 0
    assert 'data root not found: data/toy/coco/' in out.stderr
    assert 'make_toy_data.py' in out.stderr and 'instances_{train,val}2017.json' in out.stderr
    out = tool(tmp_path, 'train.py', SEG, '--work-dir', tmp_path / 'w', ok=False)
    assert 'ADEChallengeData2016' in out.stderr and 'annotations/{training,validation}' in out.stderr
    assert 'Traceback' not in out.stderr


def test_annotation_naming_a_missing_image(tmp_path):
    tool(tmp_path, 'misc/make_toy_data.py', '--out', 'data/toy', '--num-train', 3, '--num-val', 2,
         '--size', 64)
    victim = tmp_path / 'data/toy/coco/train2017/000000000002.jpg'
    victim.unlink()
    out = tool(tmp_path, 'train.py', DET, '--work-dir', tmp_path / 'w', ok=False)
    assert out.returncode != 0
    assert '1 image(s) named in data/toy/coco/annotations/instances_train2017.json are not in ' \
           'data/toy/coco/train2017/: 000000000002.jpg' in out.stderr
    assert 'Traceback' not in out.stderr


def test_unknown_arch_in_config(toy):
    out = tool(toy, 'train.py', DET, '--work-dir', toy / 'w_bad', '--cfg-options',
               'model.backbone.arch=huge', ok=False)
    assert out.returncode != 0
    assert "Bad model.backbone in" in out.stderr and "Unknown SNNMLP arch 'huge'" in out.stderr
    assert 'Traceback' not in out.stderr
