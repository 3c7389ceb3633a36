"""Hooks the tools add so that a resumed run continues exactly where it stopped."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop


@HOOKS.register_module(force=True)
class RNGStateHook(Hook):
    """Save torch's, numpy's and Python's RNG states in each checkpoint and
    restore them on resume, so that dropout, stochastic depth, RoI sampling and
    data augmentation draw the same numbers as an uninterrupted run.

    * Iteration-based loops replay the data loader up to the resume point,
      which advances numpy's and Python's generators through the pipeline just
      as the original run did; only torch's state is restored, right before
      the first iteration (after its batch is drawn, as in the original run).
    * Epoch-based loops resume at an epoch boundary with a fresh pipeline: all
      three states are restored before the epoch's first batch.
    """
    priority = 'VERY_LOW'

    def __init__(self):
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = dict(
            torch=torch.get_rng_state(),
            numpy=_numpy_state_to_plain(np.random.get_state()),
            python=_python_state_to_plain(random.getstate()))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('rng_state')

    def before_train_epoch(self, runner) -> None:
        if self._pending is not None and not isinstance(runner.train_loop, IterBasedTrainLoop):
            np.random.set_state(_plain_to_numpy_state(self._pending['numpy']))
            random.setstate(_plain_to_python_state(self._pending['python']))
            torch.set_rng_state(self._pending['torch'])
            self._pending = None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is not None:
            torch.set_rng_state(self._pending['torch'])
            self._pending = None


# Only tensors, lists and numbers go into the checkpoint (weights_only-safe).
def _numpy_state_to_plain(state):
    name, keys, pos, has_gauss, cached = state
    return [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
            float(cached)]


def _plain_to_numpy_state(plain):
    name, keys, pos, has_gauss, cached = plain
    return name, keys.numpy().astype(np.uint32), pos, has_gauss, cached


def _python_state_to_plain(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _plain_to_python_state(plain):
    version, internal, gauss = plain
    return version, tuple(internal), gauss
