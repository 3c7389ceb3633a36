"""Atomic file output: write to a temporary file beside the target, then rename."""
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
    only a killed process)."""
    if not overwrite and osp.exists(path):
        raise FileExistsError(f'Refusing to overwrite existing file: {path}')
    folder = osp.dirname(osp.abspath(path))
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
