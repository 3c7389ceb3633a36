"""mmengine glue: hooks, the runner, work dir handling, CPU SyncBN, launch helpers.

Names are imported on first use: ``hooks`` subclasses mmengine's hooks, whose
package imports cv2, which ``import mmsnnmlp`` (needing only ``sync_bn``)
must not load.
"""
import importlib

_EXPORTS = {'RNGStateHook': 'hooks', 'SafeCheckpointHook': 'hooks',
            'keep_optimizer_step_eager': 'hooks', 'CPUSyncBatchNorm': 'sync_bn',
            'WorkDirBusy': 'workdir', 'claim_work_dir': 'workdir', 'lock_work_dir': 'workdir',
            'unlock_work_dir': 'workdir', 'resume_checkpoint': 'workdir', 'SafeRunner': 'runner'}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'.{_EXPORTS[name]}', __name__), name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
