"""Hooks our configs use, so that any runner (our tools, mmdet's and mmseg's
own ``tools/train.py``, ``mim train``, a user's script) resumes exactly and
never loses its checkpoints."""
import os
import os.path as osp
import random

import numpy as np
import torch
from mmengine.dist import broadcast_object_list, get_dist_info, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper

from ..checkpoint import attach_digest, safe_load
from ..checkpoint.integrity import DIGEST_KEY
from ..fileio import atomic_open
from .workdir import (check_training_checkpoint, claim_work_dir, resume_checkpoint,
                      unlock_work_dir)


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
        # SafeCheckpointHook (same priority) may have run first: cover rng_state too
        if DIGEST_KEY in checkpoint.get('meta', {}):
            attach_digest(checkpoint, keys=['rng_state'])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('rng_state')

    def before_train_epoch(self, runner) -> None:
        # imported here: this module may be imported while mmengine.runner is
        from mmengine.runner import IterBasedTrainLoop
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


class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments), safe to kill at any moment.

    * One run per work dir: the main process holds an exclusive lock on it
      for the whole run; a second run stops with the holder's PID. A killed
      run's lock dies with it.
    * Saving: the new checkpoint is written completely (temp file, fsync,
      rename), then ``last_checkpoint`` is replaced atomically, and only then
      are checkpoints beyond ``max_keep_ckpts`` removed. mmengine removes
      first, so a kill in between can leave no checkpoint at all.
    * Resuming: ``resume=True`` follows ``last_checkpoint`` and falls back,
      with a warning, to the newest valid checkpoint when it names a missing
      or bad file; the file to resume from must be a training checkpoint of
      this model, else the run stops saying so.
    * Temp files of writes killed in an earlier run are removed at the start.
    * Each checkpoint carries a content digest (``meta['mmsnnmlp_digest']``)
      that :func:`mmsnnmlp.checkpoint.safe_load` verifies, so a damaged file
      is refused (and skipped by the resume fallback), zip or legacy format.
    """

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        attach_digest(checkpoint)

    def before_run(self, runner) -> None:
        if is_main_process():
            claim_work_dir(runner.work_dir, log=runner.logger.info)
        if runner._resume:
            self._settle_resume_target(runner)

    def after_run(self, runner) -> None:
        if is_main_process():
            unlock_work_dir(runner.work_dir)

    def _settle_resume_target(self, runner) -> None:
        """Decide on the main process which checkpoint to resume from, check
        it, and tell every process (mmengine then resumes from it)."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        target = [runner._load_from]
        if get_dist_info()[0] == 0:
            if target[0] is None:
                target[0] = resume_checkpoint(runner.work_dir, runner.logger, model)
            else:
                check_training_checkpoint(safe_load(target[0]), target[0], model)
        broadcast_object_list(target)
        runner._load_from = target[0]

    def _save_checkpoint_with_step(self, runner, step, meta):
        if type(self.file_backend).__name__ not in ('LocalBackend', 'AtomicLocalBackend'):
            return super()._save_checkpoint_with_step(runner, step, meta)
        expired = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                expired.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, filename, self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta,
                               by_epoch=self.by_epoch, backend_args=self.backend_args,
                               **self.args)
        if not is_main_process():
            return
        _fsync(self.last_ckpt)
        with atomic_open(osp.join(runner.work_dir, 'last_checkpoint')) as f:
            f.write(self.last_ckpt)
        for old in expired:
            path = osp.join(self.out_dir, self.filename_tmpl.format(old))
            if osp.isfile(path):
                os.remove(path)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def keep_optimizer_step_eager(runner) -> None:
    """For mmengine's ``compile=True``: build the runner's optimizer now and
    exclude its ``step`` from compilation. mmengine keeps param groups as
    ConfigDicts, which dynamo cannot trace through (torch 2.14); the model's
    forward and backward are still compiled."""
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    optimizer = runner.optim_wrapper.optimizer
    optimizer.step = torch._dynamo.disable(optimizer.step)

