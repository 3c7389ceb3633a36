"""Exact resume after SIGKILL, and atomic checkpoint writes (slow: real training)."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG = osp.join(ROOT, 'configs/toy/snnmlp-toy_upernet_toy-ade.py')
pytestmark = pytest.mark.slow
OPTS = ['train_cfg.max_iters=8', 'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=4',
        'default_hooks.checkpoint.max_keep_ckpts=3',
        'default_hooks.logger.interval=1', 'train_dataloader.batch_size=4', 'param_scheduler.0.end=2',
        'param_scheduler.1.begin=2', 'param_scheduler.1.end=8',
        'randomness.seed=11', 'randomness.deterministic=True']


def _train(cwd, work, *extra):
    return [sys.executable, osp.join(ROOT, 'tools/train.py'), SEG, '--work-dir', str(work),
            *extra, '--cfg-options', *OPTS]


def _load(path):
    from mmsnnmlp.models import safe_load
    return safe_load(path)


def _assert_same(a, b, where=''):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f'{where}.{k}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, where


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                    'data/toy', '--num-train', '12', '--num-val', '2', '--size', '96'],
                   cwd=tmp_path, check=True, capture_output=True)
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    out = subprocess.run(_train(tmp_path, straight), cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]

    proc = subprocess.Popen(_train(tmp_path, killed), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (killed / 'iter_4.pth').exists() or not (killed / 'last_checkpoint').exists():
        assert proc.poll() is None and time.time() < deadline, 'run ended before its checkpoint'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # hard kill while it trains iterations 5..8
    assert proc.wait() == -signal.SIGKILL
    assert not (killed / 'iter_8.pth').exists()

    # resuming without --resume is refused rather than overwriting the run
    refused = subprocess.run(_train(tmp_path, killed), cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode != 0 and 'pass --resume' in refused.stderr
    out = subprocess.run(_train(tmp_path, killed, '--resume'), cwd=tmp_path, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 4' in out.stdout + out.stderr

    a, b = _load(straight / 'iter_8.pth'), _load(killed / 'iter_8.pth')
    assert a['meta']['iter'] == b['meta']['iter'] == 8
    _assert_same(a['state_dict'], b['state_dict'], 'state_dict')
    _assert_same(a['optimizer'], b['optimizer'], 'optimizer')
    _assert_same(a['param_schedulers'], b['param_schedulers'], 'param_schedulers')
    _assert_same(a['rng_state'], b['rng_state'], 'rng_state')
    # and the run really trained: weights moved from the iteration-4 state
    mid = _load(straight / 'iter_4.pth')['state_dict']
    assert not torch.equal(mid['backbone.patch_embed.proj.weight'],
                           a['state_dict']['backbone.patch_embed.proj.weight'])


DET = osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py')
# 2 epochs of 2 iterations on 64x64 images; no validation (mmengine would run
# it after the last epoch)
DET_OPTS = ['train_cfg.max_epochs=2', 'val_cfg=None', 'val_dataloader=None',
            'val_evaluator=None', 'default_hooks.checkpoint.interval=1',
            'default_hooks.checkpoint.max_keep_ckpts=3', 'default_hooks.logger.interval=1',
            'train_dataloader.batch_size=2', 'train_dataloader.dataset.pipeline.3.scale=(64,64)',
            'model.train_cfg.rpn.sampler.num=64', 'model.train_cfg.rcnn.sampler.num=32',
            'randomness.seed=11']


def test_epoch_based_sigkill_then_resume_equals_uninterrupted(tmp_path):
    """The toy Mask R-CNN (epoch-based, 2 iterations per epoch; random flips,
    RoI sampling and stochastic depth all draw numbers): killed after its
    epoch-1 checkpoint and resumed, it ends bitwise where a run in one go ends."""
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                    'data/toy', '--num-train', '4', '--num-val', '1', '--size', '64'],
                   cwd=tmp_path, check=True, capture_output=True)

    def train(work, *extra):
        return [sys.executable, osp.join(ROOT, 'tools/train.py'), DET, '--work-dir', str(work),
                *extra, '--cfg-options', *DET_OPTS]

    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    proc = subprocess.Popen(train(killed), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (killed / 'epoch_1.pth').exists() or not (killed / 'last_checkpoint').exists():
        assert proc.poll() is None and time.time() < deadline, 'run ended before its checkpoint'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # while it trains epoch 2
    assert proc.wait() == -signal.SIGKILL
    assert not (killed / 'epoch_2.pth').exists()
    out = subprocess.run(train(straight), cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    out = subprocess.run(train(killed, '--resume'), cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'resumed epoch: 1, iter: 2' in out.stdout + out.stderr

    a, b = _load(straight / 'epoch_2.pth'), _load(killed / 'epoch_2.pth')
    assert (a['meta']['epoch'], a['meta']['iter']) == (b['meta']['epoch'], b['meta']['iter']) \
        == (2, 4)
    for part in ('state_dict', 'optimizer', 'param_schedulers', 'rng_state'):
        _assert_same(a[part], b[part], part)
    mid = _load(straight / 'epoch_1.pth')['state_dict']
    assert not torch.equal(mid['backbone.patch_embed.proj.weight'],
                           a['state_dict']['backbone.patch_embed.proj.weight'])


def _partial_temp_files(folder, name, full_size):
    """Files beside ``name`` (the atomic write's temp files) holding some but not all bytes."""
    sizes = []
    for f in os.listdir(folder):
        if f != name:
            try:
                sizes.append(os.path.getsize(osp.join(folder, f)))
            except FileNotFoundError:  # renamed or removed meanwhile
                pass
    return [s for s in sizes if 0 < s < full_size]


def test_kill_during_checkpoint_write_keeps_previous_file(tmp_path):
    """A writer killed mid-way leaves the old file whole (mmengine's backend, made atomic)."""
    target = tmp_path / 'iter_4.pth'
    target.write_bytes(b'old complete checkpoint')
    code = ('import sys; from mmengine.fileio import get_file_backend\n'
            'import mmsnnmlp  # makes mmengine\'s local writes atomic\n'
            'backend = get_file_backend(sys.argv[1])\n'
            'print("writing", flush=True)\n'
            'while True: backend.put(bytes(300_000_000), sys.argv[1])\n')
    proc = subprocess.Popen([sys.executable, '-c', code, str(target)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == 'writing'
    # kill once the temp file beside the target exists and is partly written
    deadline = time.time() + 60
    while not _partial_temp_files(tmp_path, 'iter_4.pth', 300_000_000):
        assert proc.poll() is None and time.time() < deadline, 'no temp file being written'
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    size = target.stat().st_size
    assert size in (len(b'old complete checkpoint'), 300_000_000)
    for leftover in os.listdir(tmp_path):
        if leftover != 'iter_4.pth':
            os.unlink(tmp_path / leftover)  # a partial temp file may remain; never the target
