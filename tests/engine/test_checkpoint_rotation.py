"""SafeCheckpointHook's rotation: after N saves with max_keep_ckpts=k exactly
the k newest checkpoints remain and last_checkpoint names the newest, across
a resume too, in a plain mmengine Runner and in runners built the way mmdet's
and mmseg's tools/train.py build them (their default_runtime, our hook).

Toy model and data: a run of a few iterations takes about a second."""
import itertools
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS
from mmengine.runner import Runner
from torch import nn

import mmsnnmlp  # noqa: F401  registers the hooks
from mmsnnmlp.engine import SafeCheckpointHook

_names = itertools.count()


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=(out.squeeze(1) - data_samples).pow(2).mean())
        return out


class ToyDataset(torch.utils.data.Dataset):
    metainfo = dict(classes=('a',))

    def __init__(self, size):
        self.data = torch.arange(2 * size, dtype=torch.float32).reshape(size, 2) / 10
        self.label = torch.ones(size)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return dict(inputs=self.data[i], data_samples=self.label[i])


# Runner.from_cfg dumps the config: the toys must be named, not passed as objects.
MODELS.register_module('RotationToyModel', module=ToyModel, force=True)
DATASETS.register_module('RotationToyDataset', module=ToyDataset, force=True)


def _loader(size=16):
    # iter-based runs: enough batches for no epoch change (mmengine sleeps 2 s there)
    return dict(dataset=dict(type='RotationToyDataset', size=size),
                sampler=dict(type='DefaultSampler', shuffle=False),
                batch_size=2, num_workers=0, collate_fn=dict(type='default_collate'))


def _checkpoints(work, prefix):
    return sorted((f for f in os.listdir(work) if f.startswith(prefix) and f.endswith('.pth')),
                  key=lambda f: int(f[len(prefix):-4]))


def _last(work):
    with open(osp.join(work, 'last_checkpoint')) as f:
        return f.read().strip()


def _plain_runner(work, max_iters, keep, resume=False):
    return Runner(
        model=ToyModel(), work_dir=str(work), experiment_name=f'rotation{next(_names)}',
        train_dataloader=_loader(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=1,
                            max_keep_ckpts=keep),
            logger=dict(type='LoggerHook', interval=100)),
        resume=resume, default_scope=None)


def test_keeps_the_newest_and_names_the_last(tmp_path):
    runner = _plain_runner(tmp_path, max_iters=5, keep=2)
    assert any(type(h) is SafeCheckpointHook for h in runner.hooks)
    runner.train()
    assert _checkpoints(tmp_path, 'iter_') == ['iter_4.pth', 'iter_5.pth']
    assert _last(tmp_path) == osp.join(str(tmp_path), 'iter_5.pth')


def test_rotation_goes_on_after_a_resume(tmp_path):
    """The kept ids travel in the checkpoint: the resumed run removes the
    first run's checkpoints in order, never leaving more than k."""
    _plain_runner(tmp_path, max_iters=3, keep=2).train()
    assert _checkpoints(tmp_path, 'iter_') == ['iter_2.pth', 'iter_3.pth']
    _plain_runner(tmp_path, max_iters=6, keep=2, resume=True).train()
    assert _checkpoints(tmp_path, 'iter_') == ['iter_5.pth', 'iter_6.pth']
    assert _last(tmp_path) == osp.join(str(tmp_path), 'iter_6.pth')


def test_direct_hook_calls_keep_the_newest(tmp_path):
    """The hook alone, saving at steps 1..7 with k=3 (what any runner calls)."""
    runner = _plain_runner(tmp_path, max_iters=1, keep=3)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    hook = next(h for h in runner.hooks if isinstance(h, SafeCheckpointHook))
    hook.before_train(runner)
    for step in range(1, 8):
        hook._save_checkpoint_with_step(runner, step, meta=dict(iter=step))
        kept = [f'iter_{s}.pth' for s in range(max(1, step - 2), step + 1)]
        assert _checkpoints(tmp_path, 'iter_') == kept, step
        assert _last(tmp_path) == osp.join(str(tmp_path), f'iter_{step}.pth')


# mmdet's train.py: its default_runtime (epoch-based schedule), the checkpoint
# hook replaced by ours as our configs do; mmseg's: its 160k schedule (iter-based).
LIBRARIES = {
    'mmdet': (['mmdet::_base_/default_runtime.py', 'mmdet::_base_/schedules/schedule_1x.py'],
              dict(train_cfg=dict(max_epochs=5, val_interval=100),
                   default_hooks=dict(checkpoint=dict(type='SafeCheckpointHook', interval=1,
                                                      max_keep_ckpts=2))),
              'epoch_'),
    'mmseg': (['mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_160k.py'],
              dict(train_cfg=dict(max_iters=5, val_interval=100),
                   default_hooks=dict(checkpoint=dict(type='SafeCheckpointHook', interval=1,
                                                      max_keep_ckpts=2))),
              'iter_'),
}


@pytest.mark.parametrize('library', sorted(LIBRARIES))
def test_through_the_library_runner(tmp_path, library):
    bases, overrides, prefix = LIBRARIES[library]
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(f'_base_ = {bases!r}\ncustom_imports = dict(imports=["mmsnnmlp"])\n')
    cfg = Config.fromfile(str(cfg_file))
    cfg.merge_from_dict(overrides)
    name = f'rotation{next(_names)}'
    work = tmp_path / 'work'
    cfg.update(work_dir=str(work), experiment_name=name, model=dict(type='RotationToyModel'),
               train_dataloader=_loader(2 if prefix == 'epoch_' else 16),
               val_dataloader=None, val_cfg=None,
               val_evaluator=None, test_cfg=None, param_scheduler=[],
               optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.,
                                                 weight_decay=0.)))
    cfg.visualizer.name = name
    cfg.default_hooks.logger.interval = 100
    runner = Runner.from_cfg(cfg)
    assert cfg.default_scope == library
    assert any(type(h) is SafeCheckpointHook for h in runner.hooks)
    runner.train()
    assert _checkpoints(work, prefix) == [f'{prefix}4.pth', f'{prefix}5.pth']
    assert _last(work) == osp.join(str(work), f'{prefix}5.pth')
