"""Our entries in mmengine's root registries: ``SNNMLP`` and ``CPUSyncBN`` in
``MODELS``, ``RNGStateHook`` and ``SafeCheckpointHook`` in ``HOOKS``,
``SafeRunner`` in ``RUNNERS``.

mmdet's and mmseg's registries (and those of every other OpenMMLab library)
fall back to the root, so one registration serves them all and neither
library is imported here. The hooks subclass mmengine's, whose package
imports cv2: they are registered as soon as ``mmengine.hooks`` is imported
(by a Runner, mmdet, mmseg, or ``mmsnnmlp.engine.hooks`` itself), so that
``import mmsnnmlp`` loads no cv2; likewise the runner with ``mmengine.runner``. All idempotent. What ``import mmsnnmlp``
changes in mmengine, torch and timm is in :mod:`mmsnnmlp.patches`.
"""
import importlib
import sys

from mmengine.registry import HOOKS, MODELS, RUNNERS

from .engine.sync_bn import CPUSyncBatchNorm
from .models import SNNMLP
from .patches._after_import import after_import

MODEL_ENTRIES = {'SNNMLP': SNNMLP, 'CPUSyncBN': CPUSyncBatchNorm}
HOOK_ENTRIES = ('RNGStateHook', 'SafeCheckpointHook')  # classes in mmsnnmlp.engine.hooks
RUNNER_ENTRIES = ('SafeRunner',)  # classes in mmsnnmlp.engine.runner


def register_all() -> None:
    """Register ``MODEL_ENTRIES`` now, ``HOOK_ENTRIES`` and ``RUNNER_ENTRIES``
    once their modules exist."""
    _register(MODELS, MODEL_ENTRIES)
    # the hook classes subclass mmengine's, whose package imports cv2: they are
    # registered when mmsnnmlp.engine.hooks is imported, which happens as soon
    # as anything (a Runner, mmdet, mmseg) imports mmengine.hooks
    after_import('mmsnnmlp.engine.hooks', _register_hooks)
    after_import('mmengine.hooks', _import_hooks)
    # the runner likewise, once mmengine.runner is imported
    after_import('mmsnnmlp.engine.runner', _register_runners)
    after_import('mmengine.runner', _import_runners)


def _register_hooks() -> None:
    hooks = sys.modules['mmsnnmlp.engine.hooks']
    _register(HOOKS, {name: getattr(hooks, name) for name in HOOK_ENTRIES})


def _import_hooks() -> None:
    # if mmsnnmlp.engine.hooks is the module importing mmengine.hooks, this
    # returns it half-built; _register_hooks then runs when its body ends
    importlib.import_module('mmsnnmlp.engine.hooks')


def _register_runners() -> None:
    runner = sys.modules['mmsnnmlp.engine.runner']
    _register(RUNNERS, {name: getattr(runner, name) for name in RUNNER_ENTRIES})


def _import_runners() -> None:
    importlib.import_module('mmsnnmlp.engine.runner')  # half-built if it imports us, as above


def _register(registry, entries) -> None:
    for name, module in entries.items():
        if registry.module_dict.get(name) is not module:
            registry.register_module(name=name, module=module, force=True)
