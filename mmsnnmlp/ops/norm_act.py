"""GroupNorm with one group (LayerNorm over C, H, W), optionally followed by GELU.

:func:`norm_act` computes exactly ``act(F.group_norm(x, 1, weight, bias, eps))``
as one library op, ``mmsnnmlp::norm_act``, that saves only its input and the
per-sample statistics (GELU's input is recomputed in backward). ``impl``
(see :mod:`.dispatch`) picks the path:

* Triton (:mod:`.norm_act_triton`, 'auto' on CUDA): the per-sample reduction
  split across many programs, so that batch 1-2 fills the GPU.
* PyTorch: on CPU, PyTorch's fused group-norm kernels (measured fastest
  there), plus an in-place GELU; on other devices, ``var_mean`` and
  elementwise ops, never PyTorch's GroupNorm kernel, which reduces each
  sample in one thread block.
* 'reference': ``F.group_norm`` and ``F.gelu``, autograd through PyTorch.

The statistics and the arithmetic are float32 (float64 for float64 input).
Like ``F.group_norm``, the output is float32 under autocast; ``out_dtype``
picks another (the model asks for the autocast dtype where a convolution
follows, which would cast to it anyway).

The module, :class:`~mmsnnmlp.ops.NormAct`, lives in :mod:`.modules`.
"""
import math
import os
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import dispatch, norm_act_triton
from .library import compute_dtype, define_op, like

ACTS = (None, 'gelu')


# Resolved once: torch >= 2.4 has per-device-type autocast queries.
_HAS_AUTOCAST_DTYPE = hasattr(torch, 'get_autocast_dtype')
_autocast_available = getattr(torch.amp, 'is_autocast_available', None)


def autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """The autocast dtype for ``device_type`` if autocast is on there, else None
    (also for device types without autocast, e.g. 'meta')."""
    if _autocast_available is not None and not _autocast_available(device_type):
        return None
    if _HAS_AUTOCAST_DTYPE:
        on = torch.is_autocast_enabled(device_type)
        return torch.get_autocast_dtype(device_type) if on else None
    if device_type == 'cpu':
        return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
    return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None


def _stat_shape(x: Tensor) -> Tuple[int, ...]:
    return (x.shape[0],) + (1,) * (x.dim() - 1)


def _channel_shape(x: Tensor) -> Tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.dim() - 2)


# --------------------------------------------------------------------------
# PyTorch path
# --------------------------------------------------------------------------


# Below this many values PyTorch's own CPU kernels run on one thread, while
# oneDNN's always start all threads: on a machine busy with other work each
# such start can wait a scheduler time slice (measured: 30 ms for a GELU of
# 1152 values with 2 threads at load 5). So small tensors keep ATen's kernel.
DENSE_MIN_NUMEL = 32768


def dense_view(t: Tensor) -> Tensor:
    """``t`` itself, or for a large channels_last 4-d tensor its NHWC
    permutation, which is contiguous: the same memory, in the layout under
    which PyTorch's CPU GELU runs oneDNN's kernel (2-3x faster than ATen's
    generic one, which it falls back to for any non-contiguous tensor). For
    elementwise ops only."""
    if t.dim() == 4 and t.numel() >= DENSE_MIN_NUMEL and not t.is_contiguous() \
            and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1)
    return t


def gelu_(t: Tensor) -> Tensor:
    """Exact (erf) GELU of ``t`` in place, on :func:`dense_view` (no copy)."""
    torch.ops.aten.gelu_(dense_view(t))
    return t


def gelu(t: Tensor) -> Tensor:
    """``F.gelu(t)`` in ``t``'s layout, computed on :func:`dense_view`
    (differentiable: the backward runs on the same view)."""
    view = dense_view(t)
    if view is t:
        return F.gelu(t)
    return F.gelu(view).permute(0, 3, 1, 2)


def gelu_backward(grad: Tensor, z: Tensor) -> Tensor:
    """GELU's backward at input ``z``; on the dense views when both share a layout."""
    g_view, z_view = dense_view(grad), dense_view(z)
    if g_view is grad or z_view is z:
        return torch.ops.aten.gelu_backward(grad, z)
    return torch.ops.aten.gelu_backward(g_view, z_view).permute(0, 3, 1, 2)


def group_norm(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], eps: float
               ) -> Tensor:
    """``F.group_norm(x, 1, weight, bias, eps)``. PyTorch's CPU backward of a
    channels_last input without gradient, whose weight or bias has one (a
    frozen stage's output entering a trained norm), crashes the process
    (segfault) in torch 2.1.2 to 2.10.0 at least (2.14.1 does not): such an
    input asks for a gradient, thrown away."""
    if x.device.type == 'cpu' and not x.requires_grad and _needs_grad(weight, bias) \
            and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        x = x.detach().requires_grad_()
    return F.group_norm(x, 1, weight, bias, eps)


def _torch_forward(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], eps: float,
                   gelu: bool, out_dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    ctype = compute_dtype(x)
    n, c = x.shape[:2]
    xc = x.to(ctype)  # PyTorch's kernels take channels_last too
    w = None if weight is None else weight.to(ctype)
    b = None if bias is None else bias.to(ctype)
    if x.device.type == 'cpu':
        y, mean, rstd = torch.native_group_norm(xc, w, b, n, c, math.prod(x.shape[2:]), 1, eps)
        mean, rstd = mean.reshape(n), rstd.reshape(n)
    else:
        var, mean = torch.var_mean(xc.reshape(n, -1), dim=1, correction=0)
        rstd = torch.rsqrt(var + eps)
        y = (xc - mean.view(_stat_shape(x))) * rstd.view(_stat_shape(x))
        if w is not None:
            y = torch.addcmul(b.view(_channel_shape(x)), y, w.view(_channel_shape(x)))
    if gelu:
        gelu_(y)
    return y.to(out_dtype), mean, rstd


def _torch_backward(grad: Tensor, x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor],
                    mean: Tensor, rstd: Tensor, gelu: bool
                    ) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    ctype = compute_dtype(x)
    n, c = x.shape[:2]
    xc, g = x.to(ctype), like(x, grad.to(ctype))
    w = None if weight is None else weight.to(ctype)
    xhat = None
    if gelu:  # recompute GELU's input z = x * scale + shift in one pass (per sample, channel)
        scale = rstd.view(n, 1).expand(n, c) if w is None else rstd.view(n, 1) * w
        shift = -mean.view(n, 1) * scale
        if bias is not None:
            shift = shift + bias.to(ctype)
        extra = (1,) * (x.dim() - 2)
        z = torch.addcmul(shift.view((n, c) + extra), xc, scale.reshape((n, c) + extra))
        g = gelu_backward(g, z)
    if x.device.type == 'cpu':
        return torch.ops.aten.native_group_norm_backward(
            g, xc, mean.view(n, 1), rstd.view(n, 1), w, n, c, math.prod(x.shape[2:]), 1,
            [True, w is not None, w is not None])
    if xhat is None:
        xhat = (xc - mean.view(_stat_shape(x))) * rstd.view(_stat_shape(x))
    sample_dims = tuple(range(1, x.dim()))
    gxhat = g if w is None else g * w.view(_channel_shape(x))
    mean_g = gxhat.mean(sample_dims, keepdim=True)
    mean_gx = (gxhat * xhat).mean(sample_dims, keepdim=True)
    dx = (gxhat - mean_g - xhat * mean_gx) * rstd.view(_stat_shape(x))
    if w is None:
        return dx, None, None
    channel_dims = (0,) + tuple(range(2, x.dim()))
    return dx, (g * xhat).sum(channel_dims), g.sum(channel_dims)


# --------------------------------------------------------------------------
# The library op: mmsnnmlp::norm_act and its backward
# --------------------------------------------------------------------------


def _forward(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], eps: float,
             gelu: bool, impl: str, out_dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    act = 'gelu' if gelu else None
    y, mean, rstd = dispatch.run(
        'norm_act', impl, x,
        lambda: norm_act_triton.forward(x, weight, bias, eps, act, out_dtype),
        lambda: _torch_forward(x, weight, bias, eps, gelu, out_dtype))
    return like(x, y), mean, rstd


def _forward_fake(x, weight, bias, eps, gelu, impl, out_dtype):
    ctype = compute_dtype(x)
    return (torch.empty_like(x, dtype=out_dtype), x.new_empty(x.shape[0], dtype=ctype),
            x.new_empty(x.shape[0], dtype=ctype))


def _backward(grad: Tensor, x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor],
              mean: Tensor, rstd: Tensor, gelu: bool, impl: str
              ) -> Tuple[Tensor, Tensor, Tensor]:
    """(dx, dweight, dbias); without weight, the last two are empty."""
    dx, dweight, dbias = dispatch.run(
        'norm_act', impl, x,
        lambda: norm_act_triton.backward(grad, x, weight, bias, mean, rstd,
                                         'gelu' if gelu else None),
        lambda: _torch_backward(grad, x, weight, bias, mean, rstd, gelu))
    dx = like(x, dx.to(x.dtype))
    if weight is None:
        return dx, x.new_empty(0), x.new_empty(0)
    return dx, dweight.to(weight.dtype), dbias.to(bias.dtype)


def _backward_fake(grad, x, weight, bias, mean, rstd, gelu, impl):
    if weight is None:
        return torch.empty_like(x), x.new_empty(0), x.new_empty(0)
    return torch.empty_like(x), weight.new_empty(weight.shape), bias.new_empty(bias.shape)


_backward_op = define_op('norm_act_backward', _backward, _backward_fake)


def _setup_context(ctx, inputs, output):
    x, weight, bias, eps, gelu, impl, out_dtype = inputs
    _, mean, rstd = output
    ctx.mark_non_differentiable(mean, rstd)
    ctx.save_for_backward(x, weight, bias, mean, rstd)
    ctx.gelu, ctx.impl = gelu, impl


def _autograd_backward(ctx, grad, grad_mean, grad_rstd):
    x, weight, bias, mean, rstd = ctx.saved_tensors
    dx, dweight, dbias = _backward_op(grad, x, weight, bias, mean, rstd, ctx.gelu, ctx.impl)
    has_weight = weight is not None
    return (dx if ctx.needs_input_grad[0] else None,
            dweight if has_weight and ctx.needs_input_grad[1] else None,
            dbias if has_weight and ctx.needs_input_grad[2] else None,
            None, None, None, None)


_op = define_op('norm_act', _forward, _forward_fake, _autograd_backward, _setup_context)


def norm_act(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], eps: float = 1e-5,
             act: Optional[str] = None, impl: str = 'auto',
             out_dtype: Optional[torch.dtype] = None) -> Tensor:
    """``act(F.group_norm(x, 1, weight, bias, eps))`` as one op.

    Args:
        x (Tensor): (N, C, *) input, any float dtype.
        weight, bias (Tensor | None): per-channel affine parameters of shape
            (C,), both or neither.
        eps (float): added to the variance. Default: 1e-5.
        act (str | None): None, or 'gelu' (erf GELU, as ``nn.GELU()``).
        impl (str): 'auto', 'torch', 'triton' or 'reference'; see
            :mod:`mmsnnmlp.ops.dispatch`. Default: 'auto'.
        out_dtype (torch.dtype, optional): the output dtype. Default: as
            ``F.group_norm``: float32 under autocast, else x's dtype.
    """
    if x.dim() < 2 or not x.is_floating_point():
        raise ValueError(f'norm_act expects a float (N, C, *) tensor, got shape '
                         f'{tuple(x.shape)} and {x.dtype}')
    if x[:1].numel() == 1:  # as F.group_norm: a one-value sample has no variance
        raise ValueError(f'norm_act needs more than one value per sample, got shape '
                         f'{tuple(x.shape)}')
    if (weight is None) != (bias is None):
        raise ValueError('norm_act takes weight and bias together (both or neither)')
    if weight is not None and (weight.shape != (x.shape[1],) or bias.shape != (x.shape[1],)):
        raise ValueError(f'norm_act weight and bias must have shape ({x.shape[1]},), got '
                         f'{tuple(weight.shape)} and {tuple(bias.shape)}')
    if act not in ACTS:
        raise ValueError(f'norm_act act must be None or "gelu", got {act!r}')
    dispatch.check_impl(impl)
    if out_dtype is None:
        on = autocast_dtype(x.device.type) is not None and x.dtype in (torch.float16,
                                                                      torch.bfloat16)
        out_dtype = torch.float32 if on else x.dtype
    if dispatch.traces_reference(x, impl):
        y = group_norm(x, weight, bias, eps)
        return (F.gelu(y) if act == 'gelu' else y).to(out_dtype)
    if not dispatch.is_compiling():
        if not _needs_grad(x, weight, bias):  # no backward: the same kernels, without the op
            return _forward(x, weight, bias, float(eps), act == 'gelu', impl, out_dtype)[0]
        if impl == 'auto' and x.device.type == 'cpu' and not os.environ.get(dispatch.ENV_VAR):
            # Measured on CPU: under autograd the unfused ops are faster than the
            # fused op, whose backward recomputes GELU's input (one more pass).
            y = group_norm(x, weight, bias, eps)
            return (gelu(y) if act == 'gelu' else y).to(out_dtype)
    return _op(x, weight, bias, float(eps), act == 'gelu', impl, out_dtype)[0]



def _needs_grad(*tensors: Optional[Tensor]) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)

