"""Everything ``import mmsnnmlp`` (or ``custom_imports=dict(imports=['mmsnnmlp'])``)
adds to the OpenMMLab and timm world, in one place.

* ``SNNMLP`` and ``CPUSyncBN`` go into mmengine's root ``MODELS``,
  ``RNGStateHook`` and ``SafeCheckpointHook`` into its root ``HOOKS``.
  mmdet's and mmseg's registries (and those of every other OpenMMLab
  library) fall back to the root, so one registration serves them all and
  neither library is imported here.
* mmengine reads checkpoints (local and http(s)) with the safe loader and
  writes local files atomically (:mod:`mmsnnmlp.engine.checkpoint_io`).
* torch >= 2.6: torch's ``weights_only`` allowlist learns the mmengine
  training state, for code that calls ``torch.load`` itself.
* Configs can inherit ours as ``mmsnnmlp::det/...py`` / ``mmsnnmlp::seg/...py``.
* timm gets ``snnmlp_tiny``/``snnmlp_small``/``snnmlp_base`` as soon as it is
  imported (before or after mmsnnmlp).

All of it is idempotent.
"""
import importlib
import importlib.abc
import importlib.util
import os.path as osp
import sys
import warnings

import torch
from mmengine.registry import HOOKS, MODELS

from .engine import checkpoint_io
from .engine.hooks import RNGStateHook, SafeCheckpointHook
from .engine.sync_bn import CPUSyncBatchNorm
from .models import SNNMLP
from .models.checkpoint import TORCH_ALLOWLIST, _torch_safe_globals

_REGISTERED = {MODELS: {'SNNMLP': SNNMLP, 'CPUSyncBN': CPUSyncBatchNorm},
               HOOKS: {'RNGStateHook': RNGStateHook, 'SafeCheckpointHook': SafeCheckpointHook}}


def _register_modules() -> None:
    for registry, modules in _REGISTERED.items():
        for name, module in modules.items():
            if registry.module_dict.get(name) is not module:
                registry.register_module(name=name, module=module, force=True)


def _register_config_prefix() -> None:
    """Make ``mmsnnmlp::`` resolvable for mmengine's Config (it only knows the
    packages in its MODULE2PACKAGE table)."""
    from mmengine.config import config as mmengine_config
    from mmengine.config import utils as config_utils
    config_utils.MODULE2PACKAGE['mmsnnmlp'] = 'mmsnnmlp'
    original = mmengine_config.get_installed_path
    if getattr(original, 'mmsnnmlp_fallback', False):
        return

    def get_installed_path(package: str) -> str:
        # mmengine derives the path from the distribution's location, which
        # for editable (PEP 660) installs is site-packages, not the source:
        # fall back to where the import system finds the package.
        path = original(package)
        if not osp.isdir(path):
            spec = importlib.util.find_spec(package)
            if spec is not None and spec.origin:
                return osp.dirname(spec.origin)
        return path

    get_installed_path.mmsnnmlp_fallback = True
    mmengine_config.get_installed_path = get_installed_path


def _register_timm() -> None:
    """Our timm models are added when timm finishes importing: now if it
    already has, else from an import hook (importing timm here would add
    seconds to every ``import mmsnnmlp``)."""
    if 'timm' in sys.modules:
        _add_timm_models()
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport('timm', _add_timm_models))


def _add_timm_models() -> None:
    try:  # the module registers its models when it is first imported
        importlib.import_module('mmsnnmlp.models.snnmlp_timm')
    except Exception as err:  # a broken timm must not break the import
        warnings.warn(f'mmsnnmlp: could not add the snnmlp_tiny/small/base models to timm '
                      f'{getattr(sys.modules.get("timm"), "__version__", "")} '
                      f'({type(err).__name__}: {err})')


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``callback`` once, right after module ``name`` is first imported."""

    def __init__(self, name: str, callback):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # one shot; the real finders locate it
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_then_callback(module):
                exec_module(module)
                self.callback()

            spec.loader.exec_module = exec_then_callback
        return spec


def register_all() -> None:
    """Set up everything listed in this module's docstring."""
    _register_modules()
    checkpoint_io.install()
    if TORCH_ALLOWLIST:
        torch.serialization.add_safe_globals(_torch_safe_globals())
    _register_config_prefix()
    _register_timm()
