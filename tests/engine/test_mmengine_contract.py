"""The private mmengine API SafeCheckpointHook relies on, pinned.

SafeCheckpointHook overrides CheckpointHook._save_checkpoint_with_step with a
reordered copy (save, then last_checkpoint, then delete) and steers resuming
through Runner._resume / Runner._load_from in before_run. setup.py caps
mmengine at the releases checked here; when a release changes any of it, these
tests fail and the copy in mmsnnmlp/engine/hooks.py must be reviewed.
"""
import hashlib
import inspect
import os
import os.path as osp
import re
import textwrap

import pytest
import torch
from mmengine.hooks import CheckpointHook
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmsnnmlp.engine import SafeCheckpointHook

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# sha256 of mmengine's method source: the same in every release 0.8.5 .. 0.10.7
MMENGINE_SAVE_WITH_STEP = '9b971b6cd3cc507da3041d5432ba5766d048eeebcf8b365df4417729c92d4763'
REVIEW = ('mmengine changed CheckpointHook._save_checkpoint_with_step, which '
          'SafeCheckpointHook overrides with a reordered copy: review the copy in '
          'mmsnnmlp/engine/hooks.py against the new method, then update this test and the '
          'mmengine pin in setup.py')


def test_installed_mmengine_is_in_the_pinned_range():
    from packaging.specifiers import SpecifierSet
    import mmengine
    setup = open(osp.join(ROOT, 'setup.py')).read()
    pin = re.search(r"'mmengine([^']*)'", setup).group(1)
    assert pin == '>=0.10.0,<0.11'
    assert mmengine.__version__ in SpecifierSet(pin), \
        f'mmengine {mmengine.__version__} is outside the pinned range {pin}'


def test_save_checkpoint_with_step_is_the_method_we_copied():
    method = CheckpointHook._save_checkpoint_with_step
    assert list(inspect.signature(method).parameters) == ['self', 'runner', 'step', 'meta'], REVIEW
    assert list(inspect.signature(SafeCheckpointHook._save_checkpoint_with_step).parameters) == \
        list(inspect.signature(method).parameters)
    source = textwrap.dedent(inspect.getsource(method))
    assert hashlib.sha256(source.encode()).hexdigest() == MMENGINE_SAVE_WITH_STEP, REVIEW
    # both of mmengine's savers go through it, so the override sees every save
    for caller in (CheckpointHook._save_checkpoint, CheckpointHook._save_best_checkpoint):
        assert 'self._save_checkpoint_with_step(runner' in inspect.getsource(caller), REVIEW


def test_runner_resume_attributes():
    """before_run may set runner._load_from: mmengine reads it (and _resume)
    in load_or_resume, which train() calls after before_run."""
    params = inspect.signature(Runner.__init__).parameters
    assert 'load_from' in params and 'resume' in params
    load_or_resume = inspect.getsource(Runner.load_or_resume)
    assert 'self._resume' in load_or_resume and 'self._load_from' in load_or_resume
    train = inspect.getsource(Runner.train)
    assert train.index("call_hook('before_run')") < train.index('self.load_or_resume()')
    saver = inspect.signature(Runner.save_checkpoint).parameters
    assert list(saver)[1:4] == ['out_dir', 'filename', 'file_client_args']
    assert {'save_optimizer', 'save_param_scheduler', 'meta', 'by_epoch',
            'backend_args'} <= set(saver)


class _Model(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, *args, mode='tensor', **kwargs):
        return self.fc(torch.zeros(1, 2))


def test_runner_keeps_resume_and_load_from(tmp_path):
    runner = Runner(model=_Model(), work_dir=str(tmp_path), load_from='some.pth', resume=True,
                    experiment_name='contract')
    assert runner._resume is True and runner._load_from == 'some.pth'


class _StubRunner:
    """The runner surface CheckpointHook uses while saving; records each save."""

    def __init__(self, work_dir, name):
        self.work_dir = str(work_dir)
        self.message_hub = MessageHub.get_instance(f'contract-{name}')
        self.logger = MMLogger.get_instance(f'contract-{name}')
        self.epoch, self.iter, self.saves = 0, 0, []

    def save_checkpoint(self, out_dir, filename, file_client_args=None, **kwargs):
        before = sorted(f for f in os.listdir(out_dir) if f.endswith('.pth'))
        self.saves.append((osp.relpath(out_dir, self.work_dir), filename, file_client_args,
                           kwargs, before))
        torch.save({'meta': kwargs['meta']}, osp.join(out_dir, filename))


def _run_hook(hook_cls, work_dir, name):
    runner = _StubRunner(work_dir, name)
    hook = hook_cls(interval=1, by_epoch=False, max_keep_ckpts=2, save_last=False)
    hook.before_train(runner)
    for runner.iter in range(4):
        hook._save_checkpoint(runner)
    files = sorted(os.listdir(work_dir))
    last = open(osp.join(work_dir, 'last_checkpoint')).read()
    info = {k: runner.message_hub.get_info(k) for k in ('keep_ckpt_ids', 'last_ckpt')}
    return runner.saves, files, osp.relpath(last, work_dir), info, list(hook.keep_ckpt_ids)


def test_override_saves_what_mmengine_saves_but_deletes_last(tmp_path):
    """Same saves, files, last_checkpoint and message hub as mmengine's hook;
    only the order differs: the expired checkpoint is still there while the
    new one is written."""
    (tmp_path / 'ours').mkdir()
    (tmp_path / 'theirs').mkdir()
    ours = _run_hook(SafeCheckpointHook, tmp_path / 'ours', 'ours')
    theirs = _run_hook(CheckpointHook, tmp_path / 'theirs', 'theirs')
    strip = lambda saves: [s[:4] for s in saves]  # noqa: E731
    assert strip(ours[0]) == strip(theirs[0]), REVIEW
    assert ours[1:3] == theirs[1:3] == (['iter_3.pth', 'iter_4.pth', 'last_checkpoint'],
                                        'iter_4.pth'), REVIEW
    assert ours[3]['keep_ckpt_ids'] == theirs[3]['keep_ckpt_ids'] == [3, 4], REVIEW
    assert osp.basename(ours[3]['last_ckpt']) == osp.basename(theirs[3]['last_ckpt'])
    assert ours[4] == theirs[4] == [3, 4]
    # writing iter_3: mmengine has already deleted iter_1, we have not
    assert theirs[0][2][4] == ['iter_2.pth'], REVIEW
    assert ours[0][2][4] == ['iter_1.pth', 'iter_2.pth']
