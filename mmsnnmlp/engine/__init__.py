"""mmengine glue: hooks, safe checkpoint I/O, work dir handling, CPU SyncBN."""
from .hooks import RNGStateHook, SafeCheckpointHook, keep_optimizer_step_eager
from .sync_bn import CPUSyncBatchNorm
from .workdir import WorkDirBusy, lock_work_dir, resume_checkpoint, unlock_work_dir

__all__ = ['RNGStateHook', 'SafeCheckpointHook', 'CPUSyncBatchNorm', 'WorkDirBusy',
           'lock_work_dir', 'unlock_work_dir', 'resume_checkpoint', 'keep_optimizer_step_eager']
