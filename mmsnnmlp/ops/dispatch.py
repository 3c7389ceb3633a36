"""Which implementation a fused op runs.

Every op (:func:`~mmsnnmlp.ops.lif`, :func:`~mmsnnmlp.ops.norm_act`) takes
``impl``:

* ``'auto'`` (default): Triton kernels for CUDA tensors when triton imports,
  the PyTorch path otherwise. The environment variable ``MMSNNMLP_IMPL``
  (``torch`` or ``triton``) overrides this choice. Before an op's Triton
  kernels first run for a (device, dtype), ``'auto'`` checks them once
  against the PyTorch path on a small probe (:mod:`.selfcheck`;
  ``MMSNNMLP_SELFCHECK=0`` turns this off). If the kernels fail to compile or
  launch, or give wrong results there, ``'auto'`` warns once, naming the
  Triton version, and uses the PyTorch path for that op from then on.
* ``'torch'``: the PyTorch path (any device).
* ``'triton'``: the Triton kernels; CUDA tensors, or CPU tensors under
  ``TRITON_INTERPRET=1`` (Triton's interpreter, which is how the tests run
  them). Errors are raised, never hidden, and no self-check runs: this is
  what the checks themselves call (``python -m mmsnnmlp.check`` runs them).
* ``'reference'``: the unfused oracle written as plain differentiable PyTorch
  ops (the official model's computation). Whatever ``impl`` says, an ONNX
  export traces this formulation, so that the exported graph holds standard
  ops only.

:func:`~mmsnnmlp.ops.set_impl` sets it on every LIF and norm module of a model.
"""
import os
import sys
import warnings
from typing import Callable, Dict, Optional

import torch
from torch import Tensor

from .triton_utils import interpreting, triton

IMPLS = ('auto', 'torch', 'triton', 'reference')
ENV_VAR = 'MMSNNMLP_IMPL'

# op name -> the error that made 'auto' give up on its Triton kernels
_triton_failures: Dict[str, BaseException] = {}
# (op, x) -> whether 'auto' may run op's Triton kernels for x's device and
# dtype; set by .selfcheck (which needs the ops, so it cannot be imported here)
self_check: Optional[Callable[[str, Tensor], bool]] = None


def check_impl(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')
    return impl


def _auto_choice(x: Tensor, op: str) -> str:
    override = os.environ.get(ENV_VAR, '')
    if override:
        if override not in ('torch', 'triton'):
            raise ValueError(f'{ENV_VAR} must be "torch" or "triton", got {override!r}')
        choice = override
    else:
        choice = 'triton' if x.is_cuda and triton is not None else 'torch'
    return 'torch' if op in _triton_failures else choice


def _require_triton(x: Tensor, op: str) -> None:
    if triton is None:
        raise RuntimeError(f"{op}: impl='triton' needs the triton package, which does not "
                           "import here; use impl='torch' or 'auto'")
    if x.is_cuda:
        return
    if x.device.type != 'cpu' or not interpreting():
        raise RuntimeError(
            f"{op}: impl='triton' runs on CUDA tensors, or on CPU tensors under "
            f"TRITON_INTERPRET=1 (Triton's interpreter, triton >= 2.2, for tests); got a "
            f"{x.device.type} tensor without it. Use impl='torch' or 'auto' for CPU tensors.")


def onnx_exporting() -> bool:
    """An ONNX export is running."""
    onnx = sys.modules.get('torch.onnx')  # never imported: no export is running
    return onnx is not None and onnx.is_in_onnx_export()


def is_compiling() -> bool:
    """Dynamo (torch.compile, torch.export) is tracing; never on torch < 2.3."""
    compiling = getattr(torch.compiler, 'is_compiling', None)
    return compiling is not None and compiling()


def traces_reference(x: Tensor, impl: str) -> bool:
    """Whether an op should run its reference formulation: asked for; during
    an ONNX export (standard ops only in the exported graph); or ``'auto'``
    under torch.compile for a non-CUDA tensor. Inductor fuses those plain ops
    into its own loops; our library ops would stay opaque to it (measured on
    CPU: 1.34x faster compiled than through the library ops)."""
    if impl == 'reference' or onnx_exporting():
        return True
    return impl == 'auto' and not x.is_cuda and not os.environ.get(ENV_VAR) and is_compiling()


def run(op: str, impl: str, x: Tensor, triton_fn: Callable, torch_fn: Callable):
    """Run ``triton_fn()`` or ``torch_fn()`` as ``impl`` ('auto', 'torch' or
    'triton') decides for the tensor ``x``."""
    choice = _auto_choice(x, op) if impl == 'auto' else impl
    if choice == 'torch':
        return torch_fn()
    _require_triton(x, op)
    if impl != 'auto':
        return triton_fn()
    if op in _triton_failures or (self_check is not None and not self_check(op, x)):
        return torch_fn()
    try:
        return triton_fn()
    except torch.cuda.OutOfMemoryError:  # the memory, not the kernel
        raise
    except Exception as err:  # a kernel that does not compile or launch on this Triton
        give_up(op, err)
        return torch_fn()


def give_up(op: str, err: BaseException, what: str = '', note: str = '') -> None:
    """Record that ``op``'s Triton kernels failed (``err``) and warn once:
    'auto' uses the PyTorch path for ``op`` from now on. ``what`` replaces
    the default description of the failure; ``note`` ends the warning."""
    _triton_failures[op] = err
    what = what or (f'failed on triton {triton.__version__} '
                    f'({type(err).__name__}: {err})')
    warnings.warn(f'mmsnnmlp: the Triton kernels of {op} {what}; '
                  f"impl='auto' uses the PyTorch path for {op} from now on{note}",
                  RuntimeWarning, stacklevel=3)
