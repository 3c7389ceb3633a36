"""Triton plumbing shared by the kernels: the optional import, its version,
launch options, and lazy ``triton.jit`` so that ``TRITON_INTERPRET`` may be
set at run time.

Nothing here imports from mmsnnmlp: the kernel modules and the impl choice
(:mod:`.dispatch`) both build on it.
"""
import functools
import os
from typing import Callable

try:
    import triton
except Exception:  # ImportError, or a broken install: the PyTorch path covers everything
    triton = None

TRITON_VERSION = (tuple(int(part) for part in triton.__version__.split('.')[:2])
                  if triton is not None else None)
# Launch option that stops FMA contraction (triton >= 2.2; 2.1 may contract)
NO_FP_FUSION = dict(enable_fp_fusion=False) if TRITON_VERSION and TRITON_VERSION >= (2, 2) \
    else {}


def interpreting() -> bool:
    """Whether triton.jit builds interpreter (CPU) kernels right now (never
    before triton 2.2, whose interpreter needs a GPU)."""
    if TRITON_VERSION is None or TRITON_VERSION < (2, 2):
        return False
    knobs = getattr(triton, 'knobs', None)  # triton >= 3.4 reads the flag here
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


@functools.lru_cache(maxsize=None)
def _jit_cached(fn: Callable, interpret: bool):
    del interpret  # only keys the cache: triton.jit reads TRITON_INTERPRET itself
    return triton.jit(fn)


def jit(fn: Callable):
    """``triton.jit(fn)``, made on first use and per interpreter flag, so that
    TRITON_INTERPRET may be set at run time, after triton was imported."""
    return _jit_cached(fn, interpreting())


def _add(a, b):
    return a + b


# Combine function for tl.reduce (a sum). Made at import, like tl.sum, but
# called through ``.fn`` by every interpreter version we support.
add_combine = triton.jit(_add) if triton is not None else _add
