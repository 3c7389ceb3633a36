"""Patch ``mmengine_fileio``: mmengine's local file backend writes through a
temporary file and a rename, so a killed writer never leaves a half-written
file (results, drawings, checkpoints)."""
from mmengine.fileio import backends

from ..fileio import atomic_open


class AtomicLocalBackend(backends.LocalBackend):
    """mmengine's local backend, writing through temp file + rename."""

    def put(self, obj: bytes, filepath) -> None:
        with atomic_open(str(filepath), 'wb', fsync=False) as f:
            f.write(obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        with atomic_open(str(filepath), 'w', fsync=False) as f:
            f.write(obj)


def install() -> None:
    """Make the atomic backend mmengine's ``local`` backend (idempotent)."""
    if backends.backends.get('local') is not AtomicLocalBackend:
        backends.register_backend('local', AtomicLocalBackend, force=True, prefixes='')
        from mmengine.fileio import io as mmengine_io
        mmengine_io.backend_instances.clear()  # drop cached non-atomic instances
