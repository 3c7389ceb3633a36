"""The self-check of the Triton kernels.

A user's first run on a new GPU or Triton version is the kernels' first
execution there, and a wrong result would train silently. So before
``impl='auto'`` first runs an op's Triton kernels for a (device, dtype) in a
process, :func:`verify` compares them once with the PyTorch path on a small
fixed probe (:func:`probe`: forward and backward, the tails of LIF groups
and of the norm tiles included). On a mismatch beyond tolerance, or an
error, it warns once, naming the kernel, the device, the Triton version and
the error, and ``'auto'`` uses the PyTorch path for that op from then on
(the record :func:`.dispatch.give_up` keeps for kernels that fail to launch).

* ``MMSNNMLP_SELFCHECK=0`` turns it off.
* Explicit ``impl='triton'`` is neither checked nor replaced: it is what the
  checks themselves run, and its errors are raised.
* It runs eagerly: under ``torch.compile`` the library ops run their kernels
  when the compiled graph runs, outside tracing, and the check runs there.
  While Dynamo or ``torch.jit`` traces, or a CUDA graph is being captured,
  it is skipped and left for the next call.

``python -m mmsnnmlp.check`` runs the same probes and prints their results.
"""
import os
import threading
import time
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from . import checks, dispatch
from .triton_utils import triton

ENV_VAR = 'MMSNNMLP_SELFCHECK'
OPS = ('lif', 'norm_act')
# LIF: group 4 (the model's) along H and W; 7 = 4 + 3 and 9 = 2 * 4 + 1 leave
# tails, and both sizes leave partly masked blocks
LIF_SHAPES = ((2, 5, 7, 9),)
LIF_GROUPS = (4,)
# norm_act: one tile masked along C and HW; two HW tiles (1089 = 1024 + 65),
# whose partial statistics are merged
NORM_ACT_SHAPES = ((2, 5, 7, 9), (1, 2, 33, 33))
# Relative to each tensor's largest value (at least 1): a few units in the
# last place of the dtype, so that a Triton which contracts to FMA, or
# rounds to bfloat16 otherwise, still passes; a wrong kernel is off by more
TOL = {'lif': {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 1e-2,
               torch.bfloat16: 2e-2},
       'norm_act': checks.NORM_ACT_TOL}


class SelfCheck(NamedTuple):
    """One probe of one op on one device and dtype."""
    op: str
    device: str
    dtype: str
    ok: bool
    results: List[checks.CheckResult]
    error: Optional[str]  # an exception raised by the kernels, if any
    ms: float

    def describe(self) -> str:
        """What went wrong, in words (empty if nothing)."""
        if self.error:
            return self.error
        bad = [r for r in self.results if not r.ok]
        return '; '.join(f'{r.shape} {r.case}: max error {r.max_err:.2e}' for r in bad)


_done: Dict[Tuple[str, str, torch.dtype], SelfCheck] = {}
_lock = threading.Lock()


def enabled() -> bool:
    return os.environ.get(ENV_VAR, '1').strip().lower() not in ('0', 'false', 'off', 'no')


def device_name(device) -> str:
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'{device.type} (Triton interpreter)' if device.type == 'cpu' else device.type


def probe(op: str, device, dtype: torch.dtype) -> SelfCheck:
    """Run ``op``'s probe on ``device`` in ``dtype`` (Triton against the
    PyTorch path, forward and backward), whatever the caller's autocast,
    grad or inference mode. Kernel errors are caught and reported."""
    if op not in OPS:
        raise ValueError(f'no self-check for op {op!r}; ops: {OPS}')
    device = torch.device(device)
    if device.type == 'cuda' and device.index is None:
        device = torch.device('cuda', torch.cuda.current_device())
    tol = TOL[op][dtype]
    t0 = time.perf_counter()
    results, error = [], None
    try:
        with torch.inference_mode(False), torch.enable_grad(), \
                torch.autocast(device.type, enabled=False):
            if op == 'lif':
                results = checks.check_lif(device, dtype, LIF_SHAPES, LIF_GROUPS, tol=tol,
                                           repeat=False)
            else:
                results = checks.check_norm_act(device, dtype, NORM_ACT_SHAPES, tol=tol,
                                                repeat=False)
    except torch.cuda.OutOfMemoryError:  # the memory, not the kernels
        raise
    except Exception as err:  # a kernel that does not compile or launch
        error = f'{type(err).__name__}: {err}'
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    ms = (time.perf_counter() - t0) * 1e3
    ok = error is None and bool(results) and all(r.ok for r in results)
    return SelfCheck(op, str(device), str(dtype)[len('torch.'):], ok, results, error, ms)


def _tracing(x: Tensor) -> bool:
    """Whether the check cannot run now: tracing, or capturing a CUDA graph."""
    if dispatch.is_compiling():
        return True
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    if x.device.type == 'meta':
        return True
    return x.is_cuda and torch.cuda.is_current_stream_capturing()


def verify(op: str, x: Tensor) -> bool:
    """Whether ``'auto'`` may run ``op``'s Triton kernels for ``x``'s device
    and dtype: probes them the first time (warning and recording a failure),
    then answers from the record."""
    if not enabled() or _tracing(x):
        return True
    key = (op, str(x.device), x.dtype)
    result = _done.get(key)
    if result is None:
        with _lock:  # one probe per key, also with threads
            result = _done.get(key)
            if result is None:
                result = _done[key] = probe(op, x.device, x.dtype)
                if not result.ok:
                    _warn(result)
    return result.ok


def _warn(result: SelfCheck) -> None:
    version = triton.__version__ if triton is not None else 'n/a'
    where = f'{device_name(result.device)}, self-check in {result.dtype}'
    if result.error:
        what = f'failed on triton {version} ({where}: {result.error})'
    else:
        tol = TOL[result.op][getattr(torch, result.dtype)]
        what = (f'give wrong results on triton {version} ({where}: {result.describe()}; '
                f'tolerance {tol:.0e} of the largest value)')
    dispatch.give_up(result.op, RuntimeError(f'self-check: {result.describe()}'), what,
                     f' ({ENV_VAR}=0 turns the check off)')


def results() -> List[SelfCheck]:
    """The probes run so far in this process, in order."""
    return list(_done.values())


def reset() -> None:
    """Forget the probes run so far (not the failures recorded in
    :mod:`.dispatch`): the next 'auto' call probes again."""
    _done.clear()


dispatch.self_check = verify
