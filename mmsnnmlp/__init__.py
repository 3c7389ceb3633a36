"""mmsnnmlp: the SNN-MLP backbone for MMDetection and MMSegmentation.

``import mmsnnmlp`` (or ``custom_imports = dict(imports=['mmsnnmlp'])`` in a
config) does the two things below; mmdet and mmseg are not imported.
"""
from . import patches, registration
from .models import SNNMLP
from .version import __version__

# SNNMLP, CPUSyncBN and our hooks into mmengine's root registries (mmdet/mmseg fall back to them)
registration.register_all()
# safe checkpoint reads, atomic writes, `mmsnnmlp::` configs, timm models; opt out with
# MMSNNMLP_NO_PATCHES (see mmsnnmlp/patches)
patches.install()

__all__ = ['SNNMLP', '__version__']
