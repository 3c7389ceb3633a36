"""mmdet's and mmseg's own tools/train.py (shipped as <pkg>/.mim/tools/train.py)
with our configs: the plugin, imported through custom_imports, brings the
safe hooks and exact resume without our tools (slow: real training)."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from mmsnnmlp.models import safe_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
pytestmark = pytest.mark.slow
SEG_OPTS = ['train_cfg.max_iters=4', 'train_cfg.val_interval=100',
            'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.max_keep_ckpts=3',
            'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2',
            'param_scheduler.0.end=1', 'param_scheduler.1.begin=1', 'param_scheduler.1.end=4',
            'randomness.seed=3', 'randomness.deterministic=True']


def own_train_py(library):
    package = __import__(library)
    path = osp.join(osp.dirname(package.__file__), '.mim', 'tools', 'train.py')
    if not osp.isfile(path):
        pytest.skip(f'{library} ships no .mim/tools/train.py')
    return path


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    cwd = tmp_path_factory.mktemp('own_tools')
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                    'data/toy', '--num-train', '4', '--num-val', '2', '--size', '64', '--seed',
                    '1'], cwd=cwd, check=True, capture_output=True)
    return cwd


def _cmd(library, config, work, *extra):
    return [sys.executable, own_train_py(library), config, '--work-dir', str(work), *extra]


def test_mmseg_train_py_resumes_exactly(toy):
    config = osp.join(ROOT, 'configs/toy/snnmlp-toy_upernet_toy-ade.py')
    straight, killed = toy / 'straight', toy / 'killed'
    out = subprocess.run(_cmd('mmseg', config, straight, '--cfg-options', *SEG_OPTS), cwd=toy,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (straight / '.mmsnnmlp.lock').exists()  # SafeCheckpointHook ran
    proc = subprocess.Popen(_cmd('mmseg', config, killed, '--cfg-options', *SEG_OPTS), cwd=toy,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record, deadline = killed / 'last_checkpoint', time.time() + 600
    while not (record.exists() and record.read_text().endswith('iter_2.pth')):
        assert proc.poll() is None and time.time() < deadline, 'run ended before its checkpoint'
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out = subprocess.run(_cmd('mmseg', config, killed, '--resume', '--cfg-options', *SEG_OPTS),
                         cwd=toy, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 2' in out.stdout + out.stderr
    a, b = safe_load(str(straight / 'iter_4.pth')), safe_load(str(killed / 'iter_4.pth'))
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key in a['state_dict']:
        assert torch.equal(a['state_dict'][key], b['state_dict'][key]), key
    assert torch.equal(a['rng_state']['torch'], b['rng_state']['torch'])


def test_mmdet_train_py_resumes_with_our_hooks(toy):
    config = osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py')
    work = toy / 'det'
    opts = ['train_dataloader.batch_size=2', 'train_cfg.val_interval=100',
            'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1']
    out = subprocess.run(_cmd('mmdet', config, work, '--cfg-options', 'train_cfg.max_epochs=1',
                              *opts), cwd=toy, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'rng_state' in safe_load(str(work / 'epoch_1.pth'))
    os.remove(work / 'last_checkpoint')  # resume must still find epoch_1.pth
    out = subprocess.run(_cmd('mmdet', config, work, '--resume', '--cfg-options',
                              'train_cfg.max_epochs=2', *opts),
                         cwd=toy, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert 'resuming from the newest valid checkpoint instead' in log
    assert 'resumed epoch: 1' in log
    assert safe_load(str(work / 'epoch_2.pth'))['meta']['epoch'] == 2
