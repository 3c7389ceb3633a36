"""Safe reading of SNN-MLP checkpoints and their conversion to backbone keys.

Accepted layouts (spec section 3):

* the released ImageNet files: a bare classification state dict, or a
  training checkpoint with it under ``model`` beside optimizer state and a
  pickled yacs config;
* backbone-format files written by ``tools/model_converters``;
* full mmdet/mmseg checkpoints (``state_dict`` with a ``backbone.`` prefix).

Nothing is unpickled beyond torch's ``weights_only`` allowlist, plus yacs'
``CfgNode`` read as a plain ``OrderedDict`` (so yacs need not be installed).
"""
import os
import os.path as osp
import pickle
import zipfile
from collections import OrderedDict
from typing import Any, Dict, Mapping
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

__all__ = ['CheckpointError', 'safe_load', 'extract_state_dict', 'to_backbone_state_dict',
           'load_backbone_weights', 'describe_arch']

CLASSIFIER_PREFIXES = ('head.', 'norm.')
OUTPUT_NORM_PREFIX = 'out_norms.'


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used, with the reason in the message."""


# (stand-in, the pickled global it replaces). A yacs CfgNode is a dict
# subclass; rebuilt as an OrderedDict it keeps its items and runs no code.
_EXTRA_SAFE_GLOBALS = [(OrderedDict, 'yacs.config.CfgNode')]


def _resolve(path_or_url: str) -> str:
    """A local path for ``path_or_url``, downloading URLs to torch's hub cache."""
    if urlparse(str(path_or_url)).scheme in ('http', 'https'):
        cache_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
        cached = osp.join(cache_dir, osp.basename(urlparse(path_or_url).path))
        if not osp.isfile(cached):
            os.makedirs(cache_dir, exist_ok=True)
            try:
                torch.hub.download_url_to_file(path_or_url, cached, progress=True)
            except Exception as err:
                raise CheckpointError(
                    f'Could not download checkpoint {path_or_url}: {err}. Download it by hand '
                    f'and pass the local path (or place it at {cached}).') from err
        return cached
    path = osp.expanduser(str(path_or_url))
    if not osp.exists(path):
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    if not osp.isfile(path):
        raise CheckpointError(f'Checkpoint path is not a file: {path}')
    return path


def safe_load(path_or_url: str, map_location: Any = 'cpu') -> Any:
    """``torch.load`` restricted to tensors, containers and plain values.

    Raises FileNotFoundError for a missing path and :class:`CheckpointError`
    for an empty, truncated, foreign or unsafe file."""
    path = _resolve(path_or_url)
    with open(path, 'rb') as f:
        head = f.read(4)
    if not head:
        raise CheckpointError(f'Checkpoint file is empty: {path}')
    is_zip = head == b'PK\x03\x04'
    if not is_zip and head[:1] != b'\x80':
        raise CheckpointError(f'Not a PyTorch checkpoint (neither a zip archive nor a pickle): '
                              f'{path}')
    if is_zip and not zipfile.is_zipfile(path):
        raise CheckpointError(f'Checkpoint is truncated or corrupt (incomplete zip archive): '
                              f'{path}')
    try:
        with torch.serialization.safe_globals(_EXTRA_SAFE_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # keep torch's specific reason, drop its generic advice around it
        reason = str(err).split('trusted source.', 1)[-1]
        reason = reason.split('WeightsUnpickler error:', 1)[-1]
        reason = ' '.join(reason.split('Check the documentation')[0].split())
        if any(s in reason.lower() for s in ('global', 'unrecognized function', 'can only')):
            raise CheckpointError(
                f'Refusing to load {path}: it contains a pickled object outside the safe '
                f'allowlist (tensors, containers, numbers, strings), which could run code. '
                f'({reason})') from err
        raise CheckpointError(f'Checkpoint is corrupt or not a PyTorch checkpoint: {path} '
                              f'({reason})') from err
    except (EOFError, RuntimeError, ValueError, OSError) as err:
        raise CheckpointError(f'Checkpoint is truncated or corrupt: {path} '
                              f'({type(err).__name__}: {err})') from err


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


def load_backbone_weights(model: nn.Module, path_or_url: str, logger=None) -> Dict[str, Tensor]:
    """Load a checkpoint into an :class:`SNNMLP`, all or nothing.

    Only the output norms (absent from ImageNet files) may be missing; any
    other missing, unexpected or mis-shaped key raises :class:`CheckpointError`
    before a single weight is changed."""
    state = to_backbone_state_dict(extract_state_dict(safe_load(path_or_url), str(path_or_url)))
    own = model.state_dict()
    # Output norms of stages this model does not return are not needed.
    unused_norms = [k for k in state if k.startswith(OUTPUT_NORM_PREFIX) and k not in own]
    for key in unused_norms:
        state.pop(key)
    missing = [k for k in own if k not in state and not k.startswith(OUTPUT_NORM_PREFIX)]
    unexpected = [k for k in state if k not in own]
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        lines = [f'Checkpoint {path_or_url} does not fit this SNNMLP '
                 f'(checkpoint: {describe_arch(state)}; model: {describe_arch(own)}).']
        if missing:
            lines.append(f'missing keys ({len(missing)}): {_short(missing)}')
        if unexpected:
            lines.append(f'unexpected keys ({len(unexpected)}): {_short(unexpected)}')
        if mismatched:
            lines.append(f'shape mismatch ({len(mismatched)}): {_short(mismatched, 4)}')
        raise CheckpointError('\n'.join(lines))
    model.load_state_dict(state, strict=False)
    fresh = [k for k in own if k not in state]
    if logger is not None:
        logger.info(f'Loaded {len(state)} tensors into SNNMLP from {path_or_url}'
                    + (f'; newly initialised: {_short(fresh)}' if fresh else ''))
    return state
