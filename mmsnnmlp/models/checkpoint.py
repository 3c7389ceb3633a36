"""Safe reading of checkpoints and their conversion to SNN-MLP backbone keys.

Accepted layouts (spec section 3):

* the released ImageNet files: a bare classification state dict, or a
  training checkpoint with it under ``model`` beside optimizer state and a
  pickled yacs config;
* backbone-format files written by ``tools/model_converters``;
* full mmdet/mmseg checkpoints (``state_dict`` with a ``backbone.`` prefix),
  including mmengine training checkpoints (message hub, numpy values).

Nothing is unpickled beyond one allowlist: tensors, containers, plain values,
the few mmengine/numpy types that mmengine checkpoints hold, and yacs'
``CfgNode`` read as a plain ``OrderedDict`` (so yacs need not be installed).
On torch >= 2.6 torch's own ``weights_only`` unpickler enforces it; older
torch (down to 2.1) lacks the allowlist API, and a restricted unpickler does.
"""
import _compat_pickle
import functools
import os
import os.path as osp
import pickle
import types
import zipfile
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, Tuple
from urllib.parse import urlparse

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ['CheckpointError', 'safe_load', 'is_url', 'download_to_cache', 'extract_state_dict',
           'to_backbone_state_dict', 'compare_state_dicts', 'check_state_dict_fits',
           'load_backbone_weights', 'describe_arch', 'safe_globals', 'lif_keys_hint']

CLASSIFIER_PREFIXES = ('head.', 'norm.')
OUTPUT_NORM_PREFIX = 'out_norms.'
# torch >= 2.6 loads with weights_only by default, and its allowlist takes
# (object, 'pickled.name') pairs: use it there, our own unpickler below.
TORCH_ALLOWLIST = tuple(int(v) for v in torch.__version__.split('+')[0].split('.')[:2]) >= (2, 6)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used, with the reason in the message."""


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


def download_to_cache(url: str, cache_dir: str = None) -> str:
    """Download ``url`` into torch's hub cache (once) and return the local path."""
    cache_dir = cache_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(cache_dir, osp.basename(urlparse(url).path))
    if not osp.isfile(cached):
        os.makedirs(cache_dir, exist_ok=True)
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


def _check_file(path: str, source: str) -> None:
    """Refuse empty, foreign, truncated and bit-rotted files up front."""
    with open(path, 'rb') as f:
        head = f.read(4)
    if not head:
        raise CheckpointError(f'Checkpoint file is empty: {source}')
    if head == b'PK\x03\x04':
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()  # reads every member and checks its CRC
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            raise CheckpointError(f'Checkpoint is truncated or corrupt (incomplete zip '
                                  f'archive): {source} ({err})') from err
        if bad is not None:
            raise CheckpointError(f'Checkpoint is corrupt: {source} fails its integrity check '
                                  f'(CRC error in {bad}); download or copy it again')
    elif head[:1] != b'\x80':
        raise CheckpointError(f'Not a PyTorch checkpoint (neither a zip archive nor a pickle): '
                              f'{source}')


def _torch_load(path: str, map_location: Any, restricted: bool) -> Any:
    if restricted:
        return torch.load(path, map_location=map_location, weights_only=False,
                          pickle_module=_restricted_pickle)
    with torch.serialization.safe_globals(_torch_safe_globals()):
        return torch.load(path, map_location=map_location, weights_only=True)


def safe_load(path_or_url: str, map_location: Any = 'cpu', restricted: bool = None) -> Any:
    """``torch.load`` limited to the allowlist, from a path or an http(s) URL
    (downloaded once into torch's hub cache).

    Raises FileNotFoundError for a missing path and :class:`CheckpointError`
    for an empty, truncated, corrupt, foreign or unsafe file.
    ``restricted``: force our unpickler (True) or torch's (False); by default
    torch's where it has the allowlist API (torch >= 2.6)."""
    path = _local_path(path_or_url)
    source = path if path == str(path_or_url) else f'{path_or_url} (cached at {path})'
    _check_file(path, source)
    if restricted is None:
        restricted = not TORCH_ALLOWLIST
    try:
        return _torch_load(path, map_location, restricted)
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
    except (EOFError, RuntimeError, ValueError, OSError, KeyError, TypeError,
            AttributeError) as err:
        raise CheckpointError(f'Checkpoint is truncated or corrupt: {source} '
                              f'({type(err).__name__}: {err})') from err


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------
def extract_state_dict(checkpoint: Any, source: str = 'checkpoint') -> Dict[str, Tensor]:
    """The model state dict inside any accepted layout (``module.`` stripped)."""
    state = checkpoint
    if isinstance(state, Mapping):
        for key in ('state_dict', 'model'):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not state or \
            not all(isinstance(v, Tensor) for v in state.values()):
        keys = list(checkpoint)[:10] if isinstance(checkpoint, Mapping) else type(checkpoint)
        raise CheckpointError(f'No model state dict found in {source} (top level: {keys})')
    return OrderedDict((k[7:] if k.startswith('module.') else k, v) for k, v in state.items())


def to_backbone_state_dict(state_dict: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """Released classification or full-model keys -> :class:`SNNMLP` keys."""
    if any(k.startswith('backbone.') for k in state_dict):
        return OrderedDict((k[len('backbone.'):], v) for k, v in state_dict.items()
                           if k.startswith('backbone.'))
    return OrderedDict((k, v) for k, v in state_dict.items()
                       if not k.startswith(CLASSIFIER_PREFIXES))


def describe_arch(state_dict: Mapping[str, Tensor]) -> str:
    """'embed_dims=96, depths=(2, 2, 6, 2)' read off backbone keys, if possible."""
    weight = state_dict.get('patch_embed.proj.weight')
    depths = {}
    for key in state_dict:
        parts = key.split('.')
        if len(parts) > 3 and parts[0] == 'layers' and parts[2] == 'blocks':
            stage, block = int(parts[1]), int(parts[3])
            depths[stage] = max(depths.get(stage, 0), block + 1)
    dims = weight.shape[0] if weight is not None else '?'
    return f'embed_dims={dims}, depths={tuple(depths[i] for i in sorted(depths))}'


def _short(keys, limit: int = 8) -> str:
    more = f' ... (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def compare_state_dicts(own: Mapping[str, Tensor], state: Mapping[str, Tensor],
                        may_miss: Callable[[str], bool] = lambda key: False
                        ) -> Tuple[List[str], List[str], List[str]]:
    """(missing, unexpected, mis-shaped) keys of ``state`` against ``own``;
    ``may_miss(key)`` exempts keys that need not be in ``state``."""
    missing = [k for k in own if k not in state and not may_miss(k)]
    unexpected = [k for k in state if k not in own]
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in state if k in own and state[k].shape != own[k].shape]
    return missing, unexpected, mismatched


def lif_keys_hint(missing: List[str], unexpected: List[str], own_keys) -> str:
    """Advice when the only difference is that one side has no tau or no Vth keys
    at all: a checkpoint trained with fixed values (the official
    ``--lif_fix_tau``/``--lif_fix_vth``) lacks them, and a model built with
    ``lif_fix_tau``/``lif_fix_vth`` has none. '' otherwise (a single lost key
    is damage, not a variant)."""
    own = {n: {k for k in own_keys if k.endswith('.' + n)} for n in ('tau', 'Vth')}
    if missing and not unexpected:
        absent = [n for n in ('tau', 'Vth') if own[n] and own[n] <= set(missing)]
        if absent and set(missing) == set().union(*(own[n] for n in absent)):
            flags = ', '.join(f'lif_fix_{n.lower()}=True' for n in absent)
            return (f'The checkpoint has no {"/".join(absent)} for any LIF neuron: it was '
                    f'trained with them fixed. Build the model with {flags} and the values it '
                    'was trained with (lif_tau, lif_vth).')
    if unexpected and not missing:
        extra = [n for n in ('tau', 'Vth') if not own[n]
                 and any(k.endswith('.' + n) for k in unexpected)]
        if extra and all(k.endswith(tuple('.' + n for n in extra)) for k in unexpected):
            return (f'The model fixes {"/".join(extra)} (lif_fix_tau/lif_fix_vth) but the '
                    'checkpoint holds trained values: build it without fixing them '
                    '(learn_tau/learn_vth=False keeps the checkpoint\'s values frozen).')
    return ''


def _mismatch_message(header: str, missing, unexpected, mismatched, own_keys=()) -> str:
    lines = [header]
    hint = '' if mismatched else lif_keys_hint(missing, unexpected, own_keys)
    if hint:
        lines.append(hint)
    if missing:
        lines.append(f'missing keys ({len(missing)}): {_short(missing)}')
    if unexpected:
        lines.append(f'unexpected keys ({len(unexpected)}): {_short(unexpected)}')
    if mismatched:
        lines.append(f'shape mismatch ({len(mismatched)}): {_short(mismatched, 4)}')
    return '\n'.join(lines)


def _strip_wrappers(key: str) -> str:
    """Model keys without the ``module.`` of DDP and TTA wrappers."""
    while key.startswith('module.'):
        key = key[len('module.'):]
    return key


def check_state_dict_fits(model: nn.Module, checkpoint: Any, source: str) -> Dict[str, Tensor]:
    """The state dict in ``checkpoint`` if it fits ``model`` key for key and
    shape for shape (``module.`` prefixes ignored on both sides), else a
    :class:`CheckpointError` naming the keys."""
    state = extract_state_dict(checkpoint, source)
    own = OrderedDict((_strip_wrappers(k), v) for k, v in model.state_dict().items())
    missing, unexpected, mismatched = compare_state_dicts(own, state)
    if missing or unexpected or mismatched:
        raise CheckpointError(_mismatch_message(
            f'Checkpoint {source} does not fit this {type(model).__name__} model (was it '
            'trained with another config?).', missing, unexpected, mismatched, own))
    return state


def load_backbone_weights(model: nn.Module, path_or_url: str, logger=None) -> Dict[str, Tensor]:
    """Load a checkpoint into an :class:`SNNMLP`, all or nothing.

    Only the output norms (absent from ImageNet files) may be missing; any
    other missing, unexpected or mis-shaped key raises :class:`CheckpointError`
    before a single weight is changed."""
    state = to_backbone_state_dict(extract_state_dict(safe_load(path_or_url), str(path_or_url)))
    own = model.state_dict()
    # Output norms of stages this model does not return are not needed.
    for key in [k for k in state if k.startswith(OUTPUT_NORM_PREFIX) and k not in own]:
        state.pop(key)
    missing, unexpected, mismatched = compare_state_dicts(
        own, state, may_miss=lambda key: key.startswith(OUTPUT_NORM_PREFIX))
    if missing or unexpected or mismatched:
        raise CheckpointError(_mismatch_message(
            f'Checkpoint {path_or_url} does not fit this SNNMLP (checkpoint: '
            f'{describe_arch(state)}; model: {describe_arch(own)}).',
            missing, unexpected, mismatched, own))
    model.load_state_dict(state, strict=False)
    fresh = [k for k in own if k not in state]
    if logger is not None:
        logger.info(f'Loaded {len(state)} tensors into SNNMLP from {path_or_url}'
                    + (f'; newly initialised: {_short(fresh)}' if fresh else ''))
    return state
