"""A training work dir: one run at a time, and which checkpoint to resume from."""
import os
import os.path as osp
import re
from typing import Any, Callable, Dict, List, Mapping, Optional

from ..checkpoint import CheckpointError, check_state_dict_fits, is_url, safe_load
from ..fileio import remove_stale_temp_files

LOCK_NAME = '.mmsnnmlp.lock'
CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


class WorkDirBusy(RuntimeError):
    """Another live run holds the work dir."""


_held: Dict[str, int] = {}  # real work dir path -> fd holding its lock


def lock_work_dir(work_dir: str) -> None:
    """Hold an exclusive lock on ``work_dir`` until :func:`unlock_work_dir`
    or the process ends (so a killed run never leaves a stale lock).

    Raises :class:`WorkDirBusy` naming the holder's PID. Re-locking a dir
    this process already holds is a no-op."""
    import fcntl
    os.makedirs(work_dir, exist_ok=True)
    key = osp.realpath(work_dir)
    if key in _held:
        return
    path = osp.join(work_dir, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors='replace').strip() or 'unknown'
        os.close(fd)
        raise WorkDirBusy(f'{work_dir} is in use by another run (PID {holder}); wait for it to '
                          'finish, stop it, or use another --work-dir') from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{os.getpid()}\n'.encode(), 0)
    _held[key] = fd


def claim_work_dir(work_dir: str, log: Callable[[str], None] = print) -> None:
    """The one place a run takes its work dir; call it on the run's main process.

    Locks the dir (:func:`lock_work_dir`: idempotent within a process, raises
    :class:`WorkDirBusy` while another live run holds it), then removes the
    temp files of writes killed in an earlier run, reporting each to ``log``.
    :class:`~mmsnnmlp.engine.hooks.SafeCheckpointHook` calls it in
    ``before_run`` for every runner; a launcher that calls it before building
    the Runner (as ``tools/train.py`` does) stops a second run before mmengine
    writes anything there."""
    lock_work_dir(work_dir)
    for path in remove_stale_temp_files(work_dir):
        log(f'Removed {path}, left by an interrupted write')


def unlock_work_dir(work_dir: str) -> None:
    fd = _held.pop(osp.realpath(work_dir), None)
    if fd is not None:
        os.close(fd)  # closing the last descriptor releases the flock


def checkpoints_in(folder: str) -> List[str]:
    """``epoch_N.pth`` / ``iter_N.pth`` files in ``folder``, newest step first."""
    found = []
    if osp.isdir(folder):
        for name in os.listdir(folder):
            match = CHECKPOINT_NAME.match(name)
            if match and osp.isfile(osp.join(folder, name)):
                found.append((int(match.group(2)), osp.join(folder, name)))
    return [path for _, path in sorted(found, reverse=True)]


def check_training_checkpoint(checkpoint: Any, source: str, model=None) -> None:
    """Raise :class:`CheckpointError` unless ``checkpoint`` is an mmengine
    training checkpoint (and, given ``model``, one of this model)."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    if not isinstance(meta, Mapping) or not {'epoch', 'iter'} <= set(meta) \
            or 'message_hub' not in checkpoint:
        top = list(checkpoint)[:8] if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise CheckpointError(
            f'{source} is not a training checkpoint (no meta epoch/iter or message hub; top '
            f'level: {top}): resume needs a file saved by training this config. To start from '
            'its weights instead, pass it as load_from (--cfg-options load_from=...)')
    if model is not None:
        check_state_dict_fits(model, checkpoint, source)


def _read_last_checkpoint(work_dir: str) -> Optional[str]:
    """The path ``last_checkpoint`` names, or None if it is absent; raises
    CheckpointError when it is unreadable or names nothing."""
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.exists(record):
        return None
    try:
        with open(record, 'rb') as f:
            path = f.read().decode('utf-8').strip()
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f'{record} is unreadable ({err})') from err
    if not path or '\n' in path:
        raise CheckpointError(f'{record} does not hold one checkpoint path')
    if not is_url(path) and not osp.isfile(path):
        raise CheckpointError(f'{record} names {path}, which does not exist')
    return path


def resume_checkpoint(work_dir: str, logger=None, model=None) -> Optional[str]:
    """The checkpoint an automatic ``--resume`` should use.

    Follows ``last_checkpoint``; when it is missing, unreadable, or names a
    missing or bad file, falls back (with a warning) to the newest valid
    ``epoch_N``/``iter_N`` checkpoint in the work dir. None when the dir holds
    no checkpoint at all (a fresh start). Raises CheckpointError when it holds
    checkpoints but none is usable."""
    problem = None
    try:
        path = _read_last_checkpoint(work_dir)
    except CheckpointError as err:
        path, problem = None, str(err)
    if path is not None:
        try:
            check_training_checkpoint(safe_load(path), path, model)
            return path
        except (CheckpointError, FileNotFoundError) as err:
            problem = str(err)
    candidates = checkpoints_in(work_dir)
    if not candidates:
        if problem:
            raise CheckpointError(f'Cannot resume in {work_dir}: {problem}, and no other '
                                  'checkpoint is there')
        return None
    rejected = []
    for candidate in candidates:
        if candidate == path:
            continue
        try:
            check_training_checkpoint(safe_load(candidate), candidate, model)
        except (CheckpointError, FileNotFoundError) as err:
            rejected.append(f'{osp.basename(candidate)}: {err}')
            continue
        if logger is not None:
            logger.warning(f'{problem or "last_checkpoint is missing"}; resuming from the '
                           f'newest valid checkpoint instead: {candidate}'
                           + (f' (skipped: {"; ".join(rejected)})' if rejected else ''))
        return candidate
    raise CheckpointError(f'Cannot resume in {work_dir}: {problem or "no last_checkpoint"}, and '
                          f'no checkpoint there is usable ({"; ".join(rejected)})')
