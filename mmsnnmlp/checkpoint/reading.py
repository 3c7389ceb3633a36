"""Safe reading of checkpoint files, local or downloaded.

Nothing is unpickled beyond one allowlist: tensors, containers, plain values,
the few mmengine/numpy types that mmengine checkpoints hold, and yacs'
``CfgNode`` read as a plain ``OrderedDict`` (so yacs need not be installed).
On torch >= 2.6 torch's own ``weights_only`` unpickler enforces it; older
torch (down to 2.1) lacks the allowlist API, and a restricted unpickler does.
"""
import _compat_pickle
import functools
import hashlib
import os
import os.path as osp
import pickle
import types
from collections import OrderedDict
from typing import Any, Dict, List
from urllib.parse import unquote, urlparse

import numpy as np
import torch

from .errors import CheckpointError
from .integrity import check_file, verify_digest

__all__ = ['CheckpointError', 'safe_load', 'is_url', 'download_to_cache', 'cached_path',
           'safe_globals', 'TORCH_ALLOWLIST']

# torch >= 2.6 loads with weights_only by default, and its allowlist takes
# (object, 'pickled.name') pairs: use it there, our own unpickler below.
TORCH_ALLOWLIST = tuple(int(v) for v in torch.__version__.split('+')[0].split('.')[:2]) >= (2, 6)


# --------------------------------------------------------------------------
# The allowlist
# --------------------------------------------------------------------------
def _history_buffer_getattr(obj, name):
    """``getattr`` as mmengine's HistoryBuffer pickles its statistics methods,
    and nothing else."""
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = {'min', 'max', 'current', 'mean'} | set(HistoryBuffer._statistics_methods)
    if obj is not HistoryBuffer or name not in allowed:
        raise pickle.UnpicklingError(f'checkpoint asks for getattr({obj!r}, {name!r}); only '
                                     'HistoryBuffer statistics methods are allowed')
    return getattr(HistoryBuffer, name)


def safe_globals() -> Dict[str, Any]:
    """Pickled global name -> the object it may resolve to, beyond torch's
    own tensor/container allowlist."""
    from mmengine.logging.history_buffer import HistoryBuffer
    try:
        from numpy._core import multiarray  # numpy >= 2 (1.26 has a shim)
    except ImportError:
        from numpy.core import multiarray
    allowed = {
        # a yacs CfgNode is a dict subclass: an OrderedDict keeps its items
        'yacs.config.CfgNode': OrderedDict,
        'mmengine.logging.history_buffer.HistoryBuffer': HistoryBuffer,
        'builtins.getattr': _history_buffer_getattr,
        'numpy.ndarray': np.ndarray,
        'numpy.dtype': np.dtype,
    }
    # numpy 2 pickles as numpy._core, numpy 1 as numpy.core: accept both
    for core in ('numpy.core', 'numpy._core'):
        allowed[f'{core}.multiarray._reconstruct'] = multiarray._reconstruct
        allowed[f'{core}.multiarray.scalar'] = multiarray.scalar
    for t in (np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
              np.uint8, np.bool_):
        cls = type(np.dtype(t))
        allowed[f'{cls.__module__}.{cls.__name__}'] = cls
    return allowed


def _torch_safe_globals() -> List[Any]:
    """:func:`safe_globals` in the form torch's allowlist API takes."""
    entries = []
    for name, obj in safe_globals().items():
        real = f'{getattr(obj, "__module__", "")}.{getattr(obj, "__qualname__", "")}'
        entries.append(obj if real == name else (obj, name))
    return entries


@functools.lru_cache(maxsize=None)
def _restricted_globals() -> Dict[str, Any]:
    """Everything the restricted unpickler may resolve: torch's tensor
    rebuilders, storages and dtypes, a few builtins, and :func:`safe_globals`."""
    from torch import _weights_only_unpickler
    import _codecs
    allowed = dict(_weights_only_unpickler._get_allowed_globals())
    allowed.update({f'torch.{name}': getattr(torch, name) for name in dir(torch)
                    if isinstance(getattr(torch, name, None), torch.dtype)})
    allowed.update({'builtins.set': set, 'builtins.frozenset': frozenset,
                    'builtins.complex': complex, 'builtins.bytearray': bytearray,
                    'builtins.slice': slice, '_codecs.encode': _codecs.encode,
                    'torch.device': torch.device})
    allowed.update(safe_globals())
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only allowlisted globals, so no pickled callable outside the
    list can run (the standard restricted-unpickler pattern)."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _restricted_globals()
        key = f'{module}.{name}'
        if key not in allowed and (module, name) in _compat_pickle.NAME_MAPPING:
            key = '.'.join(_compat_pickle.NAME_MAPPING[(module, name)])  # Python 2 names
        elif key not in allowed and module in _compat_pickle.IMPORT_MAPPING:
            key = f'{_compat_pickle.IMPORT_MAPPING[module]}.{name}'
        if key not in allowed:
            raise pickle.UnpicklingError(f'Unsupported global: GLOBAL {module}.{name}')
        return allowed[key]


def _load_restricted(f, **kwargs) -> Any:
    return _RestrictedUnpickler(f, **kwargs).load()


# what torch.load needs of a pickle_module: Unpickler and load
_restricted_pickle = types.SimpleNamespace(__name__='mmsnnmlp_restricted_pickle',
                                           Unpickler=_RestrictedUnpickler, load=_load_restricted)


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------
def is_url(path: Any) -> bool:
    return urlparse(str(path)).scheme in ('http', 'https')


def cached_path(url: str, cache_dir: str = None) -> str:
    """Where :func:`download_to_cache` keeps ``url``: a folder per URL (the
    first 16 hex digits of the SHA-256 of the whole URL, query included)
    holding the file under its own name, in torch's hub cache by default.
    Two URLs ending in one file name never share a cached file."""
    cache_dir = cache_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    name = osp.basename(unquote(urlparse(url).path)) or 'checkpoint'
    folder = hashlib.sha256(url.encode('utf-8')).hexdigest()[:16]
    return osp.join(cache_dir, folder, name)


def download_to_cache(url: str, cache_dir: str = None) -> str:
    """Download ``url`` into the cache (once) and return the local path
    (see :func:`cached_path`)."""
    cached = cached_path(url, cache_dir)
    if not osp.isfile(cached):
        os.makedirs(osp.dirname(cached), exist_ok=True)
        try:
            # writes a temp file and renames it: a cached file is complete
            torch.hub.download_url_to_file(url, cached, progress=True)
        except Exception as err:
            raise CheckpointError(
                f'Could not download checkpoint {url}: {err}. Download it by hand and pass the '
                f'local path (or place it at {cached}).') from err
    return cached


def _local_path(path_or_url: str) -> str:
    if is_url(path_or_url):
        return download_to_cache(str(path_or_url))
    path = osp.expanduser(str(path_or_url))
    if not path.strip():
        raise FileNotFoundError('Checkpoint path is empty')
    if not osp.exists(path):
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    if not osp.isfile(path):
        raise CheckpointError(f'Checkpoint path is not a file: {path}')
    return path


def _torch_load(path: str, map_location: Any, restricted: bool) -> Any:
    # TORCH_FORCE_WEIGHTS_ONLY_LOAD makes torch refuse any pickle_module:
    # torch's allowlist is as strict as ours, so use it where it exists
    if restricted and TORCH_ALLOWLIST and os.environ.get(
            'TORCH_FORCE_WEIGHTS_ONLY_LOAD', '0').lower() in ('1', 'y', 'yes', 'true'):
        restricted = False
    if restricted:
        return torch.load(path, map_location=map_location, weights_only=False,
                          pickle_module=_restricted_pickle)
    with torch.serialization.safe_globals(_torch_safe_globals()):
        return torch.load(path, map_location=map_location, weights_only=True)


def safe_load(path_or_url: str, map_location: Any = 'cpu', restricted: bool = None,
              name: str = None) -> Any:
    """``torch.load`` limited to the allowlist, from a path or an http(s) URL
    (downloaded once into torch's hub cache), after the zip container's
    integrity check and followed by the content digest's, if it has one.

    Raises FileNotFoundError for a missing path and :class:`CheckpointError`
    for an empty, truncated, corrupt, foreign or unsafe file.
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is never honoured: both ways of
    unpickling are given explicitly.
    ``restricted``: force our unpickler (True) or torch's (False); by default
    torch's where it has the allowlist API (torch >= 2.6). ``name``: what
    messages call the file (say, the remote name of a temporary copy)."""
    path = _local_path(path_or_url)
    source = path if path == str(path_or_url) else f'{path_or_url} (cached at {path})'
    source = source if name is None else f'{name} (read from {path})'
    check_file(path, source)
    if restricted is None:
        restricted = not TORCH_ALLOWLIST
    try:
        checkpoint = _torch_load(path, map_location, restricted)
    except pickle.UnpicklingError as err:
        # keep torch's specific reason, drop its generic advice around it
        reason = str(err).split('trusted source.', 1)[-1]
        reason = reason.split('WeightsUnpickler error:', 1)[-1]
        reason = ' '.join(reason.split('Check the documentation')[0].split())
        if any(s in reason.lower() for s in ('global', 'unrecognized function', 'can only',
                                             'getattr')):
            raise CheckpointError(
                f'Refusing to load {source}: it contains a pickled object outside the safe '
                f'allowlist (tensors, containers, numbers, strings, mmengine training state), '
                f'which could run code. ({reason})') from err
        raise CheckpointError(f'Checkpoint is corrupt or not a PyTorch checkpoint: {source} '
                              f'({reason})') from err
    except Exception as err:  # a damaged legacy pickle fails in many ways (MemoryError too)
        raise CheckpointError(f'Checkpoint is truncated or corrupt: {source} '
                              f'({type(err).__name__}: {err})') from err
    verify_digest(checkpoint, source)
    return checkpoint
