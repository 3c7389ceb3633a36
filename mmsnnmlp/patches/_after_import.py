"""Run code right after a module is first imported (now, if it already is).

Used for what must touch a module that ``import mmsnnmlp`` should not import
itself: timm (seconds to import) and ``mmengine.hooks`` / ``mmengine.runner``
(which import cv2). A one-shot ``sys.meta_path`` finder wraps the module's
loader so that the callbacks run after its body, before anyone can use it.
"""
import importlib.abc
import importlib.util
import sys
from typing import Callable, Dict, List

_pending: Dict[str, List[Callable[[], None]]] = {}  # module name -> callbacks not yet run


def after_import(name: str, callback: Callable[[], None]) -> None:
    """Call ``callback()`` once module ``name`` is imported (idempotent per callback)."""
    if name in sys.modules:
        callback()
        return
    callbacks = _pending.setdefault(name, [])
    if callback not in callbacks:
        callbacks.append(callback)
    if not any(isinstance(f, _AfterImport) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs the pending callbacks of module ``name`` right after its first import."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # one shot; the real finders locate it
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_then_callbacks(module):
                exec_module(module)
                for callback in _pending.pop(fullname, []):
                    callback()

            spec.loader.exec_module = exec_then_callbacks
        return spec
