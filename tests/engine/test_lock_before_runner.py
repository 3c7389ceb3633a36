"""A run refused because its work dir is busy writes nothing there: our
configs name ``runner_type='SafeRunner'``, which claims the work dir before
mmengine's Runner creates the log folder or dumps the config. Checked with
mmdet's and mmseg's own tools/train.py against a live run (this process
holds the work dir as a run of ours does)."""
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
from mmengine.config import Config
from mmengine.registry import RUNNERS

import mmsnnmlp  # noqa: F401  registers SafeRunner
from mmsnnmlp.engine.workdir import LOCK_NAME, claim_work_dir, unlock_work_dir

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {'mmdet': osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py'),
           'mmseg': osp.join(ROOT, 'configs/toy/snnmlp-toy_upernet_toy-ade.py')}
BASES = ['configs/det/_base_/snnmlp_coco-instance_ms-crop-3x.py',
         'configs/seg/_base_/snnmlp_8xb2-160k_ade20k-512x512.py']


def own_train_py(library):
    package = __import__(library)
    path = osp.join(osp.dirname(package.__file__), '.mim', 'tools', 'train.py')
    if not osp.isfile(path):
        pytest.skip(f'{library} ships no .mim/tools/train.py')
    return path


def snapshot(folder):
    """Every file's bytes and every folder under ``folder``."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            found[osp.relpath(osp.join(dirpath, name), folder) + '/'] = None
        for name in filenames:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                found[osp.relpath(path, folder)] = f.read()
    return found


@pytest.fixture()
def live_run(tmp_path):
    """A work dir held by a live run: this process holds its lock, and it holds
    what a run of ours has written by then (config dump, log folder)."""
    work = tmp_path / 'work'
    claim_work_dir(str(work))
    (work / 'snnmlp-toy_upernet_toy-ade.py').write_text("optim_wrapper = dict(lr=0.01)  # live\n")
    (work / 'mask-rcnn_snnmlp-toy_fpn_toy-coco.py').write_text('max_epochs = 36  # live\n')
    (work / '20240101_000000').mkdir()
    (work / '20240101_000000' / '20240101_000000.log').write_text('iter 10 loss 1.0\n')
    (work / '20240101_000000' / 'vis_data').mkdir()
    before = snapshot(work)
    assert LOCK_NAME in before
    yield work, before
    unlock_work_dir(str(work))


def test_the_shared_bases_name_the_safe_runner():
    for base in BASES:
        with open(osp.join(ROOT, base), encoding='utf-8') as f:
            assert "\nrunner_type = 'SafeRunner'\n" in f.read(), base


@pytest.mark.parametrize('library', sorted(CONFIGS))
def test_configs_build_the_safe_runner(library):
    from mmsnnmlp.engine.runner import SafeRunner
    cfg = Config.fromfile(CONFIGS[library])
    assert cfg.runner_type == 'SafeRunner'
    assert RUNNERS.get(cfg.runner_type) is SafeRunner


@pytest.mark.parametrize('library', sorted(CONFIGS))
def test_their_train_py_leaves_a_live_work_dir_untouched(library, live_run, tmp_path):
    work, before = live_run
    command = [sys.executable, own_train_py(library), CONFIGS[library], '--work-dir', str(work),
               '--cfg-options', 'optim_wrapper.optimizer.lr=0.5']
    start = time.time()
    out = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    took = time.time() - start
    assert out.returncode != 0, out.stdout[-2000:]
    assert 'WorkDirBusy' in out.stderr, out.stderr[-3000:]
    assert f'{work} is in use by another run (PID {os.getpid()})' in out.stderr, \
        out.stderr[-3000:]
    after = snapshot(work)
    assert sorted(after) == sorted(before)  # no config dump, log or vis folder added
    for name, content in before.items():
        assert after[name] == content, f'{name} changed'
    assert took < 120, f'refused only after {took:.0f} s'


def test_the_safe_runner_claims_before_mmengine_writes(tmp_path):
    """In-process, against another process's lock."""
    from mmsnnmlp.engine.runner import SafeRunner
    from mmsnnmlp.engine.workdir import WorkDirBusy
    work = tmp_path / 'work'
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time; from mmsnnmlp.engine.workdir import '
         'claim_work_dir; claim_work_dir(sys.argv[1]); print("held", flush=True); '
         'time.sleep(600)', str(work)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        before = snapshot(work)
        cfg = Config.fromfile(CONFIGS['mmseg'])
        cfg.work_dir = str(work)
        with pytest.raises(WorkDirBusy, match=rf'in use by another run \(PID {holder.pid}\)'):
            SafeRunner.from_cfg(cfg)
        assert snapshot(work) == before
    finally:
        holder.kill()
        holder.wait()
