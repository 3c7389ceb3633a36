"""Atomic file output: write to a temporary file beside the target, then rename."""
import errno
import json
import os
import os.path as osp
import re
import stat
import tempfile
from contextlib import contextmanager
from typing import List

# mkstemp names of atomic_open: '.<target name>.<random>.tmp'
TEMP_PATTERN = re.compile(r'^\..+\.[A-Za-z0-9_]{8}\.tmp$')


def _plain_write_mode(path: str) -> int:
    """The permission bits ``open(path, 'w')`` would leave: the existing
    file's, else 0o666 minus the umask (mkstemp itself uses 0o600)."""
    if osp.exists(path):
        return stat.S_IMODE(os.stat(path).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_open(path: str, mode: str = 'w', overwrite: bool = True, fsync: bool = True):
    """Like ``open(path, mode)``, but readers only ever see the old or the new file.

    With ``overwrite=False`` an existing ``path`` raises FileExistsError.
    ``fsync``: flush to disk before the rename (survives power loss, not
    only a killed process). A symlink is followed, as a plain write would:
    its target is replaced and the link stays."""
    if not overwrite and osp.lexists(path):
        raise FileExistsError(f'Refusing to overwrite existing file: {path}')
    path = osp.realpath(path)
    if osp.islink(path):  # realpath stops at a symlink loop
        raise OSError(errno.ELOOP, 'Too many levels of symbolic links', path)
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        if not overwrite and osp.exists(path):
            raise FileExistsError(f'Refusing to overwrite existing file: {path}')
        os.chmod(tmp, _plain_write_mode(path))
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str, data, overwrite: bool = True) -> None:
    with atomic_open(path, 'w', overwrite=overwrite) as f:
        json.dump(data, f, indent=2, default=float)


def remove_stale_temp_files(folder: str) -> List[str]:
    """Delete what killed :func:`atomic_open` writers left in ``folder``
    (call it only while no other writer can be active there)."""
    removed = []
    if osp.isdir(folder):
        for name in os.listdir(folder):
            path = osp.join(folder, name)
            if TEMP_PATTERN.match(name) and osp.isfile(path):
                os.unlink(path)
                removed.append(path)
    return removed


class OutputPathError(OSError):
    """An output path that cannot be written; the message names it."""


def check_writable(path: str, folder: bool = False, what: str = '') -> None:
    """Raise :class:`OutputPathError` unless a file (``folder``: a folder)
    can be written at ``path``, naming the path and the reason: it is a
    folder (a file), a parent is a file, or the nearest existing folder is
    not writable (read-only folder or file system). Creates nothing, so a
    tool can check its outputs before the slow work."""
    label = f'{what} {path}' if what else path
    target = osp.abspath(path)
    if folder and osp.exists(target) and not osp.isdir(target):
        raise OutputPathError(f'Cannot write {label}: it is a file, not a folder')
    if not folder and osp.isdir(target):
        raise OutputPathError(f'Cannot write {label}: it is a folder')
    if not folder and osp.exists(target) and not os.access(target, os.W_OK):
        raise OutputPathError(f'Cannot write {label}: the file is read-only')
    existing = target if folder else osp.dirname(target)
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise OutputPathError(f'Cannot write {label}: {existing} is a file, not a folder')
    if not os.access(existing, os.W_OK | os.X_OK):
        inside = existing == (target if folder else osp.dirname(target))
        raise OutputPathError(f'Cannot write {label}: folder {existing} is not writable'
                              + ('' if inside else ', so the folders below it cannot be made'))
