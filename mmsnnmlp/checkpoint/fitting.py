"""Strict fitting of a state dict to a model: all keys and shapes, or nothing.

:func:`check_fit` is the one check (and one error message) that the backbone
(:func:`load_backbone_weights`), the timm classifier, whole mmdet/mmseg
models (:func:`check_state_dict_fits`) and the model converter go through.
:func:`describe_arch` reads the architecture off a state dict as data;
:func:`format_arch` writes it for messages.
"""
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from torch import Tensor, nn

from .converting import extract_state_dict, to_backbone_state_dict
from .reading import CheckpointError, safe_load

__all__ = ['describe_arch', 'format_arch', 'compare_state_dicts', 'lif_keys_hint', 'check_fit',
           'check_state_dict_fits', 'load_backbone_weights', 'OUTPUT_NORM_PREFIX']

OUTPUT_NORM_PREFIX = 'out_norms.'


def describe_arch(state_dict: Mapping[str, Tensor]) -> Dict[str, Any]:
    """The architecture read off SNN-MLP keys (backbone or classifier).

    Returns a dict with ``embed_dims`` (channels of stage 0, None without a
    patch embedding), ``depths`` (blocks per stage, for the stages found, in
    order), ``stages`` (the stage indices found; ``range(len(depths))`` for a
    whole model) and ``num_classes`` (rows of ``head.weight``, None without a
    head)."""
    weight = state_dict.get('patch_embed.proj.weight')
    head = state_dict.get('head.weight')
    depths: Dict[int, int] = {}
    for key in state_dict:
        parts = key.split('.')
        if len(parts) > 3 and parts[0] == 'layers' and parts[2] == 'blocks':
            stage, block = int(parts[1]), int(parts[3])
            depths[stage] = max(depths.get(stage, 0), block + 1)
    return dict(embed_dims=int(weight.shape[0]) if weight is not None else None,
                depths=tuple(depths[i] for i in sorted(depths)),
                stages=tuple(sorted(depths)),
                num_classes=int(head.shape[0]) if head is not None else None)


def format_arch(arch: Mapping[str, Any]) -> str:
    """'embed_dims=96, depths=(2, 2, 6, 2)' for a :func:`describe_arch` dict."""
    dims = arch.get('embed_dims')
    return f'embed_dims={"?" if dims is None else dims}, depths={tuple(arch["depths"])}'


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


def check_fit(own: Mapping[str, Tensor], state: Mapping[str, Tensor], source: str,
              target: str, may_miss: Optional[Callable[[str], bool]] = None,
              show_arch: bool = True) -> None:
    """Raise :class:`CheckpointError` unless ``state`` fits ``own`` key for key
    and shape for shape.

    Args:
        own: the model's state dict.
        state: the checkpoint's, already converted to the model's keys.
        source: the message's subject, e.g. ``'Checkpoint x.pth'``.
        target: what it must fit, e.g. ``'SNNMLP'``: '{source} does not fit
            this {target} (...)'.
        may_miss: exempts keys of ``own`` that need not be in ``state``.
        show_arch: name both architectures (:func:`describe_arch`) in the
            message; else ask whether another config was used.

    The message names the missing, unexpected and mis-shaped keys, with
    advice when only the tau/Vth keys of fixed-LIF training differ."""
    missing, unexpected, mismatched = compare_state_dicts(
        own, state, may_miss or (lambda key: False))
    if not (missing or unexpected or mismatched):
        return
    if show_arch:
        why = (f'checkpoint: {format_arch(describe_arch(state))}; '
               f'model: {format_arch(describe_arch(own))}')
    else:
        why = 'was it trained with another config?'
    lines = [f'{source} does not fit this {target} ({why}).']
    hint = '' if mismatched else lif_keys_hint(missing, unexpected, own)
    if hint:
        lines.append(hint)
    if missing:
        lines.append(f'missing keys ({len(missing)}): {_short(missing)}')
    if unexpected:
        lines.append(f'unexpected keys ({len(unexpected)}): {_short(unexpected)}')
    if mismatched:
        lines.append(f'shape mismatch ({len(mismatched)}): {_short(mismatched, 4)}')
    raise CheckpointError('\n'.join(lines))


def _strip_wrappers(key: str) -> str:
    """Model keys without the ``module.`` of DDP and TTA wrappers."""
    while key.startswith('module.'):
        key = key[len('module.'):]
    return key


def check_state_dict_fits(model: nn.Module, checkpoint: Any, source: str) -> Dict[str, Tensor]:
    """The state dict in ``checkpoint`` if it fits ``model`` (any model, e.g. a
    whole detector) key for key and shape for shape (``module.`` prefixes
    ignored on both sides), else a :class:`CheckpointError` naming the keys."""
    state = extract_state_dict(checkpoint, source)
    own = OrderedDict((_strip_wrappers(k), v) for k, v in model.state_dict().items())
    check_fit(own, state, f'Checkpoint {source}', f'{type(model).__name__} model',
              show_arch=False)
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
    check_fit(own, state, f'Checkpoint {path_or_url}', 'SNNMLP',
              may_miss=lambda key: key.startswith(OUTPUT_NORM_PREFIX))
    model.load_state_dict(state, strict=False)
    fresh = [k for k in own if k not in state]
    if logger is not None:
        logger.info(f'Loaded {len(state)} tensors into SNNMLP from {path_or_url}'
                    + (f'; newly initialised: {_short(fresh)}' if fresh else ''))
    return state
