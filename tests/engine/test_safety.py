"""The tools under hostile or unlucky conditions (slow: real tool runs):
downloaded payloads, a kill between saving and deleting checkpoints, two runs
in one work dir, wrong and bit-rotted checkpoints, a corrupt last_checkpoint."""
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmsnnmlp  # noqa: F401
from helpers.http_server import FolderServer
from helpers.unpicklers import Payload
from mmsnnmlp.models import safe_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py')
SEG = osp.join(ROOT, 'configs/toy/snnmlp-toy_upernet_toy-ade.py')
SHORT = ['train_dataloader.batch_size=2', 'default_hooks.logger.interval=1',
         'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=2',
         'default_hooks.checkpoint.max_keep_ckpts=1']
pytestmark = pytest.mark.slow


def tool(cwd, *args, env=None, prefix=()):
    cmd = [sys.executable, *prefix, osp.join(ROOT, 'tools', args[0])] + [str(a) for a in args[1:]]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900,
                          env=env)


def train(cwd, work, iters, *extra, env=None, prefix=()):
    return tool(cwd, 'train.py', SEG, '--work-dir', work, *extra, '--cfg-options',
                f'train_cfg.max_iters={iters}', *SHORT, env=env, prefix=prefix)


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    cwd = tmp_path_factory.mktemp('safety')
    out = tool(cwd, 'misc/make_toy_data.py', '--out', 'data/toy', '--num-train', 4,
               '--num-val', 2, '--size', 64, '--seed', 5)
    assert out.returncode == 0, out.stderr
    return cwd


def _model_checkpoint(path, config):
    """Random weights of a toy config, in mmengine's weights layout."""
    cfg = Config.fromfile(config)
    registry = __import__(f'{cfg.default_scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = registry.build(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return model


def test_downloaded_payload_never_runs(toy, tmp_path):
    site = tmp_path / 'site'
    site.mkdir()
    marker = tmp_path / 'pwned'
    torch.save({'state_dict': {}, 'meta': Payload(marker)}, site / 'evil.pth')
    env = dict(os.environ, TORCH_HOME=str(tmp_path / 'torch_home'))
    with FolderServer(site) as server:
        url = f'{server.url}/evil.pth'
        out = tool(toy, 'train.py', SEG, '--work-dir', tmp_path / 'w1', '--cfg-options',
                   f'load_from={url}', 'train_cfg.max_iters=1', *SHORT, env=env)
        assert out.returncode != 0 and 'Refusing to load' in out.stderr, out.stderr[-2000:]
        # resume where last_checkpoint names the URL
        (tmp_path / 'w2').mkdir()
        (tmp_path / 'w2/last_checkpoint').write_text(url)
        out = train(toy, tmp_path / 'w2', 1, '--resume', env=env)
        assert out.returncode != 0 and 'Refusing to load' in out.stderr, out.stderr[-2000:]
        assert server.requests['/evil.pth'] == 1  # downloaded once, cached, refused twice
    assert not marker.exists()


# Runs tools/train.py with os.remove patched to SIGKILL the process right
# after it deletes the given checkpoint: mmengine deletes the old checkpoint
# *before* writing the new one, so a kill there used to leave none at all.
KILL_AFTER_REMOVING = '''
import os, runpy, signal, sys
victim, sys.argv = sys.argv[1], sys.argv[2:]
real_remove = os.remove
def remove(path, *args, **kwargs):
    real_remove(path, *args, **kwargs)
    if os.path.basename(path) == victim:
        os.kill(os.getpid(), signal.SIGKILL)
os.remove = remove
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def test_kill_between_saving_and_deleting_then_resume(toy, tmp_path):
    work = tmp_path / 'work'
    out = train(toy, work, 6, prefix=('-c', KILL_AFTER_REMOVING, 'iter_2.pth'))
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    assert sorted(f for f in os.listdir(work) if f.endswith('.pth')) == ['iter_4.pth']
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_4.pth')
    out = train(toy, work, 6, '--resume')
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 4' in out.stdout + out.stderr
    assert safe_load(str(work / 'iter_6.pth'))['meta']['iter'] == 6
    # then last_checkpoint rots: resume falls back to the newest valid file
    (work / 'last_checkpoint').write_bytes(b'\xff\xfe\x00\x01')
    out = train(toy, work, 8, '--resume')
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert 'resuming from the newest valid checkpoint instead' in log and \
        'resumed epoch: 0, iter: 6' in log


def test_two_runs_one_work_dir(toy, tmp_path):
    work = tmp_path / 'shared'
    cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), SEG, '--work-dir', str(work),
           '--cfg-options', 'train_cfg.max_iters=2', *SHORT]
    runs = [subprocess.Popen(cmd, cwd=toy, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = [(p.pid, p.wait(timeout=900), p.stderr.read()) for p in runs]
    for p in runs:
        p.stdout.close()
        p.stderr.close()
    winners = [r for r in results if r[1] == 0]
    losers = [r for r in results if r[1] != 0]
    assert len(winners) == 1 and len(losers) == 1, [r[1:] for r in results]
    assert f'is in use by another run (PID {winners[0][0]})' in losers[0][2]
    assert len([d for d in os.listdir(work) if d[:8].isdigit()]) == 1  # one timestamp folder


def test_wrong_and_damaged_checkpoints_are_refused(toy, tmp_path):
    _model_checkpoint(tmp_path / 'seg.pth', SEG)
    det = _model_checkpoint(tmp_path / 'det.pth', DET)
    torch.save({'state_dict': det.backbone.state_dict()}, tmp_path / 'backbone.pth')
    out = tool(toy, 'test.py', DET, tmp_path / 'seg.pth', '--work-dir', tmp_path / 't1')
    assert out.returncode != 0
    assert 'does not fit this MaskRCNN model' in out.stderr and 'missing keys' in out.stderr \
        and 'unexpected keys' in out.stderr and 'decode_head.' in out.stderr, out.stderr[-2000:]
    out = tool(toy, 'test.py', DET, tmp_path / 'backbone.pth', '--work-dir', tmp_path / 't2')
    assert out.returncode != 0 and 'unexpected keys' in out.stderr, out.stderr[-2000:]
    # bit rot: one flipped byte in a stored tensor
    data = bytearray((tmp_path / 'det.pth').read_bytes())
    data[len(data) // 2] ^= 0x10
    (tmp_path / 'rotten.pth').write_bytes(bytes(data))
    out = tool(toy, 'test.py', DET, tmp_path / 'rotten.pth', '--work-dir', tmp_path / 't3')
    assert out.returncode != 0 and 'rotten.pth' in out.stderr and \
        ('integrity check' in out.stderr or 'corrupt' in out.stderr), out.stderr[-2000:]
    # --resume from weights alone, and from another model's checkpoint
    out = train(toy, tmp_path / 'r1', 1, '--resume', tmp_path / 'seg.pth')
    assert out.returncode != 0 and 'is not a training checkpoint' in out.stderr, \
        out.stderr[-2000:]
    assert 'Traceback' not in out.stderr
