"""Patch ``timm_models``: timm gets ``snnmlp_tiny``/``snnmlp_small``/
``snnmlp_base`` as soon as it is imported, before or after mmsnnmlp.

Importing timm here would add seconds to every ``import mmsnnmlp``, so when
timm is not imported yet a one-shot import hook registers our models right
after timm finishes importing.
"""
import importlib
import sys
import warnings

from ._after_import import after_import


def install() -> None:
    """Register our timm models now, or when timm is first imported (idempotent)."""
    after_import('timm', _add_timm_models)


def _add_timm_models() -> None:
    try:  # the module registers its models when it is first imported
        importlib.import_module('mmsnnmlp.models.snnmlp_timm')
    except Exception as err:  # a broken timm must not break the import
        warnings.warn(f'mmsnnmlp: could not add the snnmlp_tiny/small/base models to timm '
                      f'{getattr(sys.modules.get("timm"), "__version__", "")} '
                      f'({type(err).__name__}: {err})')
