"""RNGStateHook: a resumed run draws the random numbers an uninterrupted run
draws, and keeps drawing new ones (the saved state is applied once, not
before every iteration).

A toy model with dropout and a per-sample drop-path mask records what each
training iteration drew; a run of 6 iterations is compared with one resumed
from its iteration-3 checkpoint. About a second per run."""
import itertools
import random

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

import mmsnnmlp  # noqa: F401  registers the hooks

_names = itertools.count()


class DropoutModel(BaseModel):
    """Records, per training forward, the dropout mask, the drop-path mask and
    one numpy and one Python draw (as a data pipeline would)."""

    def __init__(self, record):
        super().__init__()
        self.linear = nn.Linear(8, 1)
        self.dropout = nn.Dropout(0.5)
        self.record = record

    def forward(self, inputs, data_samples=None, mode='tensor'):
        dropped = self.dropout(inputs)
        # stochastic depth: one keep/drop draw per sample
        keep = inputs.new_empty(inputs.shape[0], 1).bernoulli_(0.5)
        out = self.linear(dropped * keep)
        if mode != 'loss':
            return out
        self.record.append(dict(dropout=(dropped != 0).clone(), drop_path=keep.clone(),
                                numpy=np.random.rand(), python=random.random()))
        return dict(loss=(out.squeeze(1) - data_samples).pow(2).mean())


class OnesDataset(torch.utils.data.Dataset):
    metainfo = dict(classes=('a',))

    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size

    def __getitem__(self, i):
        return dict(inputs=torch.ones(8), data_samples=torch.tensor(float(i)))


def _run(work, record, by_epoch, resume_from=None):
    """6 iterations (iter-based) or 3 epochs of 2 iterations, a checkpoint
    every 3 iterations / every epoch."""
    if by_epoch:
        train_cfg, size = dict(by_epoch=True, max_epochs=3), 4
        checkpoint = dict(type='SafeCheckpointHook', by_epoch=True, interval=1)
    else:
        # enough data for no epoch change (mmengine sleeps 2 s there)
        train_cfg, size = dict(by_epoch=False, max_iters=6), 12
        checkpoint = dict(type='SafeCheckpointHook', by_epoch=False, interval=3)
    runner = Runner(
        model=DropoutModel(record), work_dir=str(work), experiment_name=f'rng{next(_names)}',
        train_dataloader=dict(dataset=OnesDataset(size),
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              batch_size=2, num_workers=0,
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=train_cfg,
        default_hooks=dict(checkpoint=checkpoint, logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=[dict(type='RNGStateHook')],
        randomness=dict(seed=5),
        resume=resume_from is not None, load_from=resume_from, default_scope=None)
    runner.train()


def _same(a, b, keys):
    return all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in keys)


@pytest.mark.parametrize('by_epoch', [False, True], ids=['iter_based', 'epoch_based'])
def test_resumed_run_draws_what_an_uninterrupted_one_draws(tmp_path, by_epoch):
    straight = []
    _run(tmp_path / 'straight', straight, by_epoch)
    assert len(straight) == 6
    resumed = []
    ckpt = tmp_path / 'straight' / ('epoch_1.pth' if by_epoch else 'iter_3.pth')
    _run(tmp_path / 'resumed', resumed, by_epoch, resume_from=str(ckpt))
    start = 2 if by_epoch else 3
    assert len(resumed) == 6 - start
    # iteration-based runs replay the data loader for numpy's and Python's
    # generators (the toy's forward draws are not replayed): torch's only
    keys = ('dropout', 'drop_path', 'numpy', 'python') if by_epoch else ('dropout', 'drop_path')
    for i, (a, b) in enumerate(zip(straight[start:], resumed), start + 1):
        assert _same(a, b, keys), f'iteration {i} drew other numbers after the resume'
    # and the masks go on changing: the state is not re-applied each iteration
    for i in range(len(resumed) - 1):
        assert not _same(resumed[i], resumed[i + 1], ('dropout',)), \
            f'iterations {start + i + 1} and {start + i + 2} drew the same dropout mask'
