"""Checkpoints: safe reading (:mod:`.reading`), integrity of the container and
a content digest (:mod:`.integrity`), layouts and key conversion
(:mod:`.converting`), strict fitting to a model (:mod:`.fitting`)."""
from .converting import checkpoint_filter_fn, extract_state_dict, to_backbone_state_dict
from .errors import CheckpointError
from .fitting import (check_fit, check_state_dict_fits, compare_state_dicts, describe_arch,
                      format_arch, lif_keys_hint, load_backbone_weights)
from .integrity import attach_digest, compute_digest, verify_digest
from .reading import (TORCH_ALLOWLIST, cached_path, download_to_cache, is_url, safe_globals,
                      safe_load)

__all__ = ['CheckpointError', 'safe_load', 'is_url', 'download_to_cache', 'cached_path',
           'safe_globals', 'TORCH_ALLOWLIST', 'attach_digest', 'compute_digest',
           'verify_digest', 'extract_state_dict', 'to_backbone_state_dict',
           'checkpoint_filter_fn', 'describe_arch', 'format_arch', 'compare_state_dicts',
           'lif_keys_hint', 'check_fit', 'check_state_dict_fits', 'load_backbone_weights']
