"""Atomic file output: write to a temporary file beside the target, then rename."""
import json
import os
import os.path as osp
import tempfile
from contextlib import contextmanager


@contextmanager
def atomic_open(path: str, mode: str = 'w', overwrite: bool = True):
    """Like ``open(path, mode)``, but readers only ever see the old or the new file.

    With ``overwrite=False`` an existing ``path`` raises FileExistsError."""
    if not overwrite and osp.exists(path):
        raise FileExistsError(f'Refusing to overwrite existing file: {path}')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if not overwrite and osp.exists(path):
            raise FileExistsError(f'Refusing to overwrite existing file: {path}')
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str, data, overwrite: bool = True) -> None:
    with atomic_open(path, 'w', overwrite=overwrite) as f:
        json.dump(data, f, indent=2, default=float)


def _atomic_local_backend():
    from mmengine.fileio.backends import LocalBackend

    class AtomicLocalBackend(LocalBackend):
        """mmengine's local backend, writing through temp file + rename."""

        def put(self, obj: bytes, filepath) -> None:
            with atomic_open(str(filepath), 'wb') as f:
                f.write(obj)

        def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
            with atomic_open(str(filepath), 'w') as f:
                f.write(obj)

    return AtomicLocalBackend


def use_atomic_local_writes() -> None:
    """Make mmengine write local files atomically (checkpoints, last_checkpoint,
    dumped results): a kill mid-write leaves the previous file intact."""
    from mmengine.fileio import backends, io as mmengine_io
    if backends.backends['local'].__name__ == 'AtomicLocalBackend':
        return
    backends.register_backend('local', _atomic_local_backend(), force=True, prefixes='')
    mmengine_io.backend_instances.clear()  # drop cached non-atomic instances
