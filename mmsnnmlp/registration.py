"""Register SNN-MLP in the registries of whichever of mmdet/mmseg imports."""
import importlib

from .models import SNNMLP

# library -> module that holds its model registry
_REGISTRIES = {'mmdet': 'mmdet.registry', 'mmseg': 'mmseg.registry'}


def register_all() -> list:
    """Add ``SNNMLP`` to each importable library's ``MODELS``; returns their names."""
    registered = []
    for library, module_name in _REGISTRIES.items():
        try:
            models = importlib.import_module(module_name).MODELS
        except ImportError:
            continue
        if models.get('SNNMLP') is not SNNMLP:
            models.register_module(name='SNNMLP', module=SNNMLP, force=True)
        registered.append(library)
    return registered
