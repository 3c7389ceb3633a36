"""Checkpoint layouts and their conversion to the keys of our models.

Accepted layouts:

* the released ImageNet files: a bare classification state dict, or a
  training checkpoint with it under ``model`` beside optimizer state and a
  pickled yacs config;
* backbone-format files written by ``tools/model_converters``;
* full mmdet/mmseg checkpoints (``state_dict`` with a ``backbone.`` prefix),
  including mmengine training checkpoints (message hub, numpy values).
"""
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional

from torch import Tensor, nn

from .reading import CheckpointError

__all__ = ['extract_state_dict', 'to_backbone_state_dict', 'checkpoint_filter_fn',
           'CLASSIFIER_PREFIXES']

# keys of the released classifier that the backbone does not have
CLASSIFIER_PREFIXES = ('head.', 'norm.')


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


def checkpoint_filter_fn(state_dict: Mapping[str, Any], model: Optional[nn.Module] = None
                         ) -> Dict[str, Tensor]:
    """A released checkpoint, either layout, as the timm classifier's state dict
    (timm's ``pretrained_filter_fn``).

    The keys are the classifier's own; only the training layout's ``model``
    wrapper (and a DataParallel ``module.`` prefix) come off."""
    return extract_state_dict(state_dict, 'SNN-MLP checkpoint')
