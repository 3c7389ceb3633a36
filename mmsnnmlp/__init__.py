"""mmsnnmlp: the SNN-MLP backbone for MMDetection and MMSegmentation.

``import mmsnnmlp`` (or ``custom_imports = dict(imports=['mmsnnmlp'])`` in a
config) registers ``SNNMLP`` in mmdet's and mmseg's ``MODELS``.
"""
from .models import SNNMLP
from .registration import register_all
from .version import __version__

REGISTERED_IN = register_all()

__all__ = ['SNNMLP', '__version__', 'REGISTERED_IN']
