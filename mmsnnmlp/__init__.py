"""mmsnnmlp: the SNN-MLP backbone for MMDetection and MMSegmentation.

``import mmsnnmlp`` (or ``custom_imports = dict(imports=['mmsnnmlp'])`` in a
config) registers ``SNNMLP`` and our hooks with mmengine, which mmdet's and
mmseg's registries fall back to, and makes mmengine's checkpoint I/O safe:
see :mod:`mmsnnmlp.registration` for the full list.
"""
from .models import SNNMLP
from .registration import register_all
from .version import __version__

register_all()

__all__ = ['SNNMLP', '__version__']
