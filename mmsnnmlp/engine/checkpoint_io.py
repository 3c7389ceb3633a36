"""mmengine's checkpoint reading and local writing, made safe.

Installed by ``import mmsnnmlp`` (see :mod:`mmsnnmlp.registration`):

* every checkpoint mmengine reads from a local path or an http(s) URL
  (``load_from``, ``resume``, ``init_detector``/``init_model``, the
  inferencers, ``CheckpointLoader``) goes through
  :func:`mmsnnmlp.models.checkpoint.safe_load`. mmengine's own http loader
  unpickles downloads with ``weights_only=False``; the ``torchvision://``,
  ``open-mmlab://`` and ``mmcls://`` schemes call it too, so it is replaced
  where they look it up;
* mmengine's local file backend writes through a temporary file and a
  rename, so a killed writer never leaves a half-written file.
"""
import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import backends
from mmengine.runner import checkpoint as mmengine_checkpoint

from ..models.checkpoint import download_to_cache, safe_load
from ..utils.io import atomic_open


def load_from_local(filename, map_location=None):
    """mmengine scheme loader for local paths."""
    return safe_load(filename, map_location=map_location)


def load_from_http(filename, map_location=None, model_dir=None, progress=True):
    """mmengine scheme loader for http(s): download once into torch's hub
    cache (local rank 0 first, as mmengine does), then :func:`safe_load`."""
    rank, world_size = get_dist_info()
    if rank == 0:
        download_to_cache(filename, model_dir)
    if world_size > 1:
        torch.distributed.barrier()
    return safe_load(download_to_cache(filename, model_dir), map_location=map_location)


class AtomicLocalBackend(backends.LocalBackend):
    """mmengine's local backend, writing through temp file + rename."""

    def put(self, obj: bytes, filepath) -> None:
        with atomic_open(str(filepath), 'wb', fsync=False) as f:
            f.write(obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        with atomic_open(str(filepath), 'w', fsync=False) as f:
            f.write(obj)


def install() -> None:
    """Route mmengine's checkpoint reads through the safe loader and its
    local writes through the atomic backend (idempotent)."""
    loader = mmengine_checkpoint.CheckpointLoader
    loader.register_scheme(prefixes='', loader=load_from_local, force=True)
    loader.register_scheme(prefixes=('http://', 'https://'), loader=load_from_http, force=True)
    # torchvision://, open-mmlab://, mmcls:// resolve a name, then call these
    mmengine_checkpoint.load_from_http = load_from_http
    mmengine_checkpoint.load_from_local = load_from_local
    if backends.backends.get('local') is not AtomicLocalBackend:
        backends.register_backend('local', AtomicLocalBackend, force=True, prefixes='')
        from mmengine.fileio import io as mmengine_io
        mmengine_io.backend_instances.clear()  # drop cached non-atomic instances
