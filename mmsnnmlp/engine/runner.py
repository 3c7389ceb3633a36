"""A Runner that takes its work dir before writing anything there."""
from mmengine.runner import Runner

from .launch import launcher_rank
from .workdir import claim_work_dir


class SafeRunner(Runner):
    """mmengine's ``Runner`` (same arguments, ``runner_type='SafeRunner'``),
    which claims the work dir first (:func:`~.workdir.claim_work_dir`).

    mmengine's Runner creates the log folder, dumps the config and opens the
    log in its ``__init__``, before any hook runs: a second run on a live
    run's work dir would overwrite that run's config dump before
    ``SafeCheckpointHook.before_run`` stops it. Here it stops first, having
    written nothing. Only the launcher's rank 0 claims (no process group
    exists yet)."""

    def __init__(self, model, work_dir, *args, **kwargs):
        if launcher_rank() == 0:
            claim_work_dir(work_dir)
        super().__init__(model, work_dir, *args, **kwargs)
