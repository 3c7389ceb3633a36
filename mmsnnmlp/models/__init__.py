"""Framework-neutral SNN-MLP models (no mmdet/mmseg/timm imports here).

The timm classifiers ``snnmlp_tiny``/``snnmlp_small``/``snnmlp_base`` live in
:mod:`mmsnnmlp.models.snnmlp_timm`, which needs timm; ``SNNMLP(arch='tiny')``
is the detection/segmentation backbone.
"""
from ..checkpoint import CheckpointError, load_backbone_weights, safe_load
from .snnmlp import SNNMLP
from .variants import VARIANTS, SNNMLPSpec

__all__ = ['SNNMLP', 'SNNMLPSpec', 'VARIANTS', 'CheckpointError', 'load_backbone_weights',
           'safe_load']
