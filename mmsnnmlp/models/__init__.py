"""Framework-neutral SNN-MLP models (no mmdet/mmseg imports here)."""
from .checkpoint import CheckpointError, load_backbone_weights, safe_load
from .snnmlp import SNNMLP, snnmlp_base, snnmlp_small, snnmlp_tiny

__all__ = ['SNNMLP', 'snnmlp_tiny', 'snnmlp_small', 'snnmlp_base', 'CheckpointError',
           'load_backbone_weights', 'safe_load']
