"""How the fused ops pick an implementation, and how they become library ops.

Every op (:func:`~mmsnnmlp.ops.lif`, :func:`~mmsnnmlp.ops.norm_act`) takes
``impl``:

* ``'auto'`` (default): Triton kernels for CUDA tensors when triton imports,
  the PyTorch path otherwise. The environment variable ``MMSNNMLP_IMPL``
  (``torch`` or ``triton``) overrides this choice. If a Triton kernel fails to
  compile or launch, ``'auto'`` warns once, naming the Triton version, and
  uses the PyTorch path for that op from then on.
* ``'torch'``: the PyTorch path (any device).
* ``'triton'``: the Triton kernels; CUDA tensors, or CPU tensors under
  ``TRITON_INTERPRET=1`` (Triton's interpreter, which is how the tests run
  them). Errors are raised, never hidden.
* ``'reference'``: the unfused oracle written as plain differentiable PyTorch
  ops (the official model's computation).

:func:`set_impl` sets it on every LIF and norm module of a model.

:func:`define_op` registers an op with ``torch.library.custom_op`` (torch >=
2.4: fake kernel and autograd, so ``torch.compile(fullgraph=True)`` traces
models through it). On older torch it falls back to a plain
``torch.autograd.Function``, which runs eagerly but has no compile support.
"""
import functools
import os
import warnings
from typing import Callable, Dict, Optional

import torch
from torch import Tensor

try:
    import triton
except Exception:  # ImportError, or a broken install: the PyTorch path covers everything
    triton = None

IMPLS = ('auto', 'torch', 'triton', 'reference')
TRITON_VERSION = (tuple(int(part) for part in triton.__version__.split('.')[:2])
                  if triton is not None else None)
# Launch option that stops FMA contraction (triton >= 2.2; 2.1 may contract)
NO_FP_FUSION = dict(enable_fp_fusion=False) if TRITON_VERSION and TRITON_VERSION >= (2, 2) \
    else {}
ENV_VAR = 'MMSNNMLP_IMPL'
HAS_CUSTOM_OP = hasattr(torch.library, 'custom_op')  # torch >= 2.4
LIBRARY = 'mmsnnmlp'

# op name -> the error that made 'auto' give up on its Triton kernels
_triton_failures: Dict[str, BaseException] = {}


def check_impl(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')
    return impl


def interpreting() -> bool:
    """Whether triton.jit builds interpreter (CPU) kernels right now (never
    before triton 2.2, whose interpreter needs a GPU)."""
    if TRITON_VERSION is None or TRITON_VERSION < (2, 2):
        return False
    knobs = getattr(triton, 'knobs', None)  # triton >= 3.4 reads the flag here
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


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


def traces_reference(x: Tensor, impl: str) -> bool:
    """Whether an op should run its reference formulation: asked for, or
    ``'auto'`` under torch.compile for a non-CUDA tensor. Inductor fuses those
    plain ops into its own loops; our library ops would stay opaque to it
    (measured on CPU: 1.34x faster compiled than through the library ops)."""
    if impl == 'reference':
        return True
    compiling = getattr(torch.compiler, 'is_compiling', None)  # torch >= 2.3
    return (impl == 'auto' and not x.is_cuda and not os.environ.get(ENV_VAR)
            and compiling is not None and compiling())


def run(op: str, impl: str, x: Tensor, triton_fn: Callable, torch_fn: Callable):
    """Run ``triton_fn()`` or ``torch_fn()`` as ``impl`` ('auto', 'torch' or
    'triton') decides for the tensor ``x``."""
    choice = _auto_choice(x, op) if impl == 'auto' else impl
    if choice == 'torch':
        return torch_fn()
    _require_triton(x, op)
    if impl != 'auto':
        return triton_fn()
    try:
        return triton_fn()
    except torch.cuda.OutOfMemoryError:  # the memory, not the kernel
        raise
    except Exception as err:  # a kernel that does not compile or launch on this Triton
        _triton_failures[op] = err
        warnings.warn(f'mmsnnmlp: the Triton kernels of {op} failed on triton '
                      f'{triton.__version__} ({type(err).__name__}: {err}); '
                      f"impl='auto' uses the PyTorch path for {op} from now on",
                      RuntimeWarning, stacklevel=2)
        return torch_fn()


@functools.lru_cache(maxsize=None)
def _jit_cached(fn: Callable, interpret: bool):
    del interpret  # only keys the cache: triton.jit reads TRITON_INTERPRET itself
    return triton.jit(fn)


def jit(fn: Callable):
    """``triton.jit(fn)``, made on first use and per interpreter flag, so that
    TRITON_INTERPRET may be set at run time, after triton was imported."""
    return _jit_cached(fn, interpreting())


def like(x: Tensor, y: Tensor) -> Tensor:
    """``y`` (same shape as ``x``) in ``torch.empty_like(x)``'s memory layout,
    the layout every op of this package returns (its fake kernels promise
    it), so that channels_last models stay channels_last."""
    if y.stride() == x.stride() or y.dim() != x.dim():
        return y
    return torch.empty_like(x, dtype=y.dtype).copy_(y)


def define_op(name: str, forward: Callable, fake: Callable,
              backward: Optional[Callable] = None, setup_context: Optional[Callable] = None):
    """``mmsnnmlp::name`` as a custom op (torch >= 2.4), else a Python callable.

    ``forward`` must be fully type-annotated (the op schema is inferred from
    it) and return new tensors; ``backward(ctx, *grads)`` and
    ``setup_context(ctx, inputs, output)`` follow torch.library's convention.
    Call the result with positional arguments only."""
    if HAS_CUSTOM_OP:
        op = torch.library.custom_op(f'{LIBRARY}::{name}', forward, mutates_args=())
        op.register_fake(fake)
        if backward is not None:
            op.register_autograd(backward, setup_context=setup_context)
        return op
    if backward is None:
        return forward

    class Function(torch.autograd.Function):

        @staticmethod
        def forward(ctx, *inputs):
            output = forward(*inputs)
            setup_context(ctx, inputs, output)
            return output

        @staticmethod
        def backward(ctx, *grads):
            return backward(ctx, *grads)

    Function.__name__ = Function.__qualname__ = f'{name}_function'
    return Function.apply


def set_impl(model: torch.nn.Module, impl: str) -> torch.nn.Module:
    """Set ``impl`` on every :class:`~mmsnnmlp.ops.LIF` and
    :class:`~mmsnnmlp.ops.NormAct` inside ``model``; returns ``model``."""
    from .lif import LIF
    from .norm_act import NormAct
    check_impl(impl)
    for module in model.modules():
        if isinstance(module, (LIF, NormAct)):
            module.impl = impl
    return model


def _add(a, b):
    return a + b


# Combine function for tl.reduce (a sum). Made at import, like tl.sum, but
# called through ``.fn`` by every interpreter version we support.
add_combine = triton.jit(_add) if triton is not None else _add
