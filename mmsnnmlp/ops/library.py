"""How the fused ops become library ops, and the conventions they share.

:func:`define_op` registers an op with ``torch.library.custom_op`` (torch >=
2.4: fake kernel and autograd, so ``torch.compile(fullgraph=True)`` traces
models through it). On older torch it falls back to a plain
``torch.autograd.Function``, which runs eagerly but has no compile support.
"""
from typing import Callable, Optional

import torch
from torch import Tensor

HAS_CUSTOM_OP = hasattr(torch.library, 'custom_op')  # torch >= 2.4
LIBRARY = 'mmsnnmlp'


def compute_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64; everything else computes in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


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
