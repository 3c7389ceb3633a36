"""Patch ``mmengine_checkpoint``: every checkpoint mmengine reads goes
through :func:`mmsnnmlp.checkpoint.safe_load`, whatever names it.

That covers ``load_from``, ``resume``, ``init_detector``/``init_model``, the
inferencers and ``CheckpointLoader``, for local paths, http(s) URLs and the
names mmengine resolves to one: ``torchvision://``, ``modelzoo://`` and
``mmcls://`` (URLs), ``open-mmlab://``/``openmmlab://`` (URLs, or files under
``$MMENGINE_HOME`` mapped by its ``open_mmlab.json``), ``pavi://`` and
``s3://``/``petrel://`` (downloaded to a temporary file). mmengine's own
loaders call ``torch.load`` with its defaults, which
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns into a plain unpickler; ours
never honour it. ``mmengine.runner`` imports cv2, so the loaders are
replaced right after ``mmengine.runner.checkpoint`` is first imported.
"""
import importlib
import logging
import os.path as osp
from tempfile import TemporaryDirectory

import torch
from mmengine.dist import get_dist_info

from ..checkpoint import download_to_cache, safe_load
from ._after_import import after_import


def _mmengine_checkpoint():
    return importlib.import_module('mmengine.runner.checkpoint')


def load_from_local(filename, map_location=None):
    """mmengine scheme loader for local paths."""
    return safe_load(filename, map_location=map_location)


def load_from_http(filename, map_location=None, model_dir=None, progress=True):
    """mmengine scheme loader for http(s): download once into the cache
    (local rank 0 first, as mmengine does), then :func:`safe_load`."""
    rank, world_size = get_dist_info()
    if rank == 0:
        download_to_cache(filename, model_dir)
    if world_size > 1:
        torch.distributed.barrier()
    return safe_load(download_to_cache(filename, model_dir), map_location=map_location)


def load_from_openmmlab(filename, map_location=None):
    """``open-mmlab://NAME``/``openmmlab://NAME``, resolved as mmengine does
    (deprecated names, its table merged with ``$MMENGINE_HOME/open_mmlab.json``):
    a URL downloads through :func:`load_from_http`, a relative path names a
    file under ``$MMENGINE_HOME``."""
    mmengine_checkpoint = _mmengine_checkpoint()
    prefix = 'open-mmlab://' if filename.startswith('open-mmlab://') else 'openmmlab://'
    name = filename[len(prefix):]
    deprecated = mmengine_checkpoint.get_deprecated_model_names()
    if name in deprecated:
        from mmengine.logging import print_log
        print_log(f'{prefix}{name} is deprecated in favor of {prefix}{deprecated[name]}',
                  logger='current', level=logging.WARNING)
        name = deprecated[name]
    model_url = mmengine_checkpoint.get_external_models()[name]
    if model_url.startswith(('http://', 'https://')):
        return load_from_http(model_url, map_location=map_location)
    path = osp.join(mmengine_checkpoint._get_mmengine_home(), model_url)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} can not be found.')
    return safe_load(path, map_location=map_location)


def load_from_pavi(filename, map_location=None):
    """``pavi://``: download from pavi's model cloud to a temporary file."""
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError('Please install pavi to load checkpoint from modelcloud.')
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as folder:
        path = osp.join(folder, osp.basename(model.name) or 'checkpoint.pth')
        model.download(path)
        return safe_load(path, map_location=map_location, name=filename)


def load_from_ceph(filename, map_location=None, backend='petrel'):
    """``s3://``/``petrel://``: fetch through mmengine's file backend into a
    temporary file."""
    from mmengine.fileio import get_file_backend
    data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    with TemporaryDirectory() as folder:
        path = osp.join(folder, 'checkpoint.pth')
        with open(path, 'wb') as f:
            f.write(data)
        return safe_load(path, map_location=map_location, name=filename)


def install() -> None:
    """Route mmengine's checkpoint reads through the safe loader, now or when
    mmengine's checkpoint module is first imported (idempotent)."""
    after_import('mmengine.runner.checkpoint', _replace_loaders)


def _replace_loaders() -> None:
    mmengine_checkpoint = _mmengine_checkpoint()
    register = mmengine_checkpoint.CheckpointLoader.register_scheme
    register(prefixes='', loader=load_from_local, force=True)
    register(prefixes=('http://', 'https://'), loader=load_from_http, force=True)
    register(prefixes=('open-mmlab://', 'openmmlab://'), loader=load_from_openmmlab, force=True)
    register(prefixes='pavi://', loader=load_from_pavi, force=True)
    register(prefixes=[r'(\S+\:)?s3://', r'(\S+\:)?petrel://'], loader=load_from_ceph,
             force=True)
    # torchvision://, modelzoo:// and mmcls:// resolve a name, then call
    # load_from_http by its module-level name; the rest for any direct caller
    for loader in (load_from_local, load_from_http, load_from_openmmlab, load_from_pavi,
                   load_from_ceph):
        setattr(mmengine_checkpoint, loader.__name__, loader)
