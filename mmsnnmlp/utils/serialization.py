"""Let mmengine's resume work under torch's ``weights_only`` default.

torch >= 2.6 loads checkpoints with ``weights_only=True``; mmengine 0.10.7
predates that, and its checkpoints hold a few non-tensor objects (message hub
buffers, numpy scalars and arrays). Rather than unpickling arbitrary code, we
add exactly those types to torch's allowlist. A ``HistoryBuffer`` pickles its
statistics methods as ``getattr(HistoryBuffer, name)``: ``getattr`` itself is
not allowed, only a stand-in that resolves those names on that class.
"""
import pickle

import numpy as np
import torch

_DONE = False


def _numpy_globals():
    # numpy pickles arrays and scalars through these reconstructors and dtypes
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    names = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    dtypes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.float16, np.int64,
                                          np.int32, np.int16, np.int8, np.uint8, np.bool_)]
    return names + dtypes


def _history_buffer_getattr(HistoryBuffer):

    def restricted_getattr(obj, name):
        allowed = {'min', 'max', 'current', 'mean'} | set(HistoryBuffer._statistics_methods)
        if obj is not HistoryBuffer or name not in allowed:
            raise pickle.UnpicklingError(
                f'checkpoint asks for getattr({obj!r}, {name!r}); only HistoryBuffer '
                'statistics methods are allowed')
        return getattr(HistoryBuffer, name)

    return restricted_getattr


def allow_mmengine_checkpoints() -> None:
    """Allowlist the types mmengine puts into checkpoints (idempotent)."""
    global _DONE
    if _DONE:
        return
    from mmengine.logging.history_buffer import HistoryBuffer
    torch.serialization.add_safe_globals(
        [HistoryBuffer, (_history_buffer_getattr(HistoryBuffer), 'builtins.getattr')]
        + _numpy_globals())
    _DONE = True
