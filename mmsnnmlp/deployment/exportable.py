"""Put an SNN-MLP model into a form the ONNX exporters can trace.

The fused ops (``mmsnnmlp::lif``, ``mmsnnmlp::norm_act``) are library ops no
ONNX exporter knows. Inside :func:`exportable` every LIF and norm module runs
a formulation in plain PyTorch ops chosen for what ONNX Runtime runs fast
(the grouped LIF recurrence unrolled over the ``group`` positions and
vectorised over the groups, with Max and a multiplied mask instead of
Where; ``GroupNorm(1, C)`` as reductions and elementwise ops, the GELU
after it exported as the Erf pattern ONNX Runtime fuses), and the few
forwards whose Python control flow depends on the input size are swapped
for branch-free equivalents, so that one graph serves every batch, H and W:

* patch embedding and patch merging always pad (by zero when nothing is
  missing) instead of padding only when the size asks for it;
* grouped LIF slices the processed rows and the tail by computed sizes
  (a tail of H mod group rows, or everything when H < group, passes through;
  a graph made for one size, ``static=True``, skips that where there is no tail);
* for float64 graphs, convs, norms and GELUs are spelled with ops ONNX
  Runtime runs in float64 (its Conv, InstanceNormalization and Erf kernels
  are float32-only);
* adaptive average pooling (UperNet's pyramid pooling module) becomes two
  matrix products with weights computed from the input size;
* global LIF (one group over the whole axis) has a recurrence as long as the
  axis: an ONNX ``Loop`` from a scripted loop (TorchScript exporter) or a
  ``Scan`` from ``torch.scan`` (dynamo exporter), never an unrolled chain
  of fixed length.

Everything is restored on exit. Other modules (mmdet's Swin, a ResNet) pass
through unchanged.
"""
import contextlib
import functools
import math
from typing import Dict, Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import LIF, NormAct

EXPORTERS = ('torchscript', 'dynamo')


class ExportError(RuntimeError):
    """A model, or an option of it, that cannot be exported."""


# --------------------------------------------------------------------------
# Branch-free forwards
# --------------------------------------------------------------------------


def _patch_embed_forward(module: nn.Module, x: Tensor) -> Tensor:
    p = module.patch_size
    pad_h, pad_w = (p - x.shape[2] % p) % p, (p - x.shape[3] % p) % p
    return module.norm(module.proj(F.pad(x, (0, pad_w, 0, pad_h))))


def _patch_merging_forward(module: nn.Module, x: Tensor) -> Tensor:
    x = F.pad(x, (0, x.shape[3] % 2, 0, x.shape[2] % 2))
    # Channel order of the released models: (0,0), (1,0), (0,1), (1,1).
    x = torch.cat([x[..., 0::2, 0::2], x[..., 1::2, 0::2],
                   x[..., 0::2, 1::2], x[..., 1::2, 1::2]], 1)
    return module.reduction(module.norm(x))


def _pool_matrix(length, out: int, like: Tensor) -> Tensor:
    """(out, length) averaging weights of adaptive pooling along one axis:
    cell i averages positions [floor(i*L/out), ceil((i+1)*L/out))."""
    pos = torch.arange(length, device=like.device).unsqueeze(0)
    cell = torch.arange(out, device=like.device).unsqueeze(1)
    start = torch.div(cell * length, out, rounding_mode='floor')
    end = torch.div((cell + 1) * length + out - 1, out, rounding_mode='floor')
    inside = ((pos >= start) & (pos < end)).to(like.dtype)
    return inside / inside.sum(1, keepdim=True)


def _adaptive_avg_pool_forward(module: nn.AdaptiveAvgPool2d, x: Tensor) -> Tensor:
    """Adaptive average pooling as two matrix products, so it exports for
    any input size (the exporter handles only output sizes dividing it)."""
    size = module.output_size
    out_h, out_w = (size, size) if isinstance(size, int) else size
    out_h = x.shape[2] if out_h is None else out_h
    out_w = x.shape[3] if out_w is None else out_w
    rows = _pool_matrix(x.shape[2], out_h, x)
    cols = _pool_matrix(x.shape[3], out_w, x)
    return torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))


# --------------------------------------------------------------------------
# float64 graphs: ONNX Runtime's CPU kernels for Conv, InstanceNormalization
# and Erf are float32-only, so float64 graphs (for checking parity) spell
# them with MatMul, reductions and elementwise ops.
# --------------------------------------------------------------------------

# erf: Taylor series (Horner form) on |z| <= 2, continued fraction of erfc on
# 2 <= |z| <= 6; 32 terms and depth 44 leave both below 1e-15 (checked against
# torch.special.erf in float64: 9e-16 and 2e-16 at 30 and 40), with few graph nodes.
_ERF_SPLIT = 2.0
_ERF_TAYLOR_TERMS = 32
_ERFC_FRACTION_DEPTH = 44
_SQRT_PI = 1.7724538509055160273


def erf64(z: Tensor) -> Tensor:
    """erf from ops every runtime has in float64 (about 1e-15 absolute error)."""
    a = z.abs()
    t = a.clamp(max=_ERF_SPLIT)
    u = -t * t
    # sum_n (-t^2)^n / (n! (2n+1)), innermost term first
    series = torch.full_like(t, 1.0 / (math.factorial(_ERF_TAYLOR_TERMS - 1)
                                       * (2 * _ERF_TAYLOR_TERMS - 1)))
    for n in range(_ERF_TAYLOR_TERMS - 2, -1, -1):
        series = series * u + 1.0 / (math.factorial(n) * (2 * n + 1))
    near = series * t * (2.0 / _SQRT_PI)
    b = a.clamp(min=_ERF_SPLIT, max=6.0)  # erf(6) is 1 to double precision
    f = b
    for k in range(_ERFC_FRACTION_DEPTH, 0, -1):
        f = b + (k / 2.0) / f
    far = 1.0 - torch.exp(-b * b) / (_SQRT_PI * f)
    return torch.sign(z) * torch.where(a <= _ERF_SPLIT, near, far)


def gelu64(x: Tensor) -> Tensor:
    return 0.5 * x * (1.0 + erf64(x * 0.7071067811865476))


def _gelu64_forward(module: nn.GELU, x: Tensor) -> Tensor:
    return gelu64(x)


def _norm_act64_forward(module: NormAct, x: Tensor) -> Tensor:
    dims = tuple(range(1, x.dim()))
    centred = x - x.mean(dims, keepdim=True)
    y = centred / torch.sqrt((centred * centred).mean(dims, keepdim=True) + module.eps)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    if module.weight is not None:
        y = y * module.weight.view(shape) + module.bias.view(shape)
    return gelu64(y) if module.act == 'gelu' else y


def _conv64_forward(module: nn.Conv2d, x: Tensor) -> Tensor:
    """A (grouped or depthwise) conv as a sum over kernel offsets of strided
    slices, each a channel MatMul (or a product, depthwise)."""
    (kh, kw), (sh, sw), (dh, dw) = module.kernel_size, module.stride, module.dilation
    ph, pw = module.padding if isinstance(module.padding, tuple) else (0, 0)
    if module.padding_mode != 'zeros' or isinstance(module.padding, str):
        raise ExportError('float64 export supports zero-padded convs with int padding')
    x = F.pad(x, (pw, pw, ph, ph))
    out_h = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1
    out_w = (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
    groups, weight = module.groups, module.weight
    depthwise = groups == x.shape[1] and weight.shape[1] == 1
    if groups != 1 and not depthwise:
        raise ExportError('float64 export supports dense and depthwise convs only')
    if (kh, kw) == (sh, sw) and (dh, dw) == (1, 1) and groups == 1:
        # patchify (the patch embedding): one MatMul over reshaped patches
        # reshaped by sizes traced from x: flatten/unflatten would bake the example's in
        n, c = x.shape[0], x.shape[1]
        patches = x[:, :, :out_h * kh, :out_w * kw].reshape(n, c, out_h, kh, out_w, kw)
        patches = patches.permute(0, 2, 4, 1, 3, 5).reshape(n, out_h, out_w, c * kh * kw)
        total = torch.matmul(patches, weight.flatten(1).t()).permute(0, 3, 1, 2)
        return total if module.bias is None else total + module.bias.view(1, -1, 1, 1)
    total = None
    for i in range(kh):
        for j in range(kw):
            part = x[:, :, i * dh:i * dh + sh * (out_h - 1) + 1:sh,
                     j * dw:j * dw + sw * (out_w - 1) + 1:sw]
            if depthwise:
                term = part * weight[:, 0, i, j].view(1, -1, 1, 1)
            else:
                flat = part.reshape(x.shape[0], x.shape[1], -1)
                term = torch.matmul(weight[:, :, i, j], flat).unflatten(2, (out_h, out_w))
            total = term if total is None else total + term
    if module.bias is not None:
        total = total + module.bias.view(1, -1, 1, 1)
    return total


def _params(module: LIF, x: Tensor) -> Tuple[Tensor, Tensor]:
    """tau and Vth as 0-d tensors of x's dtype (fixed ones are floats)."""
    def cast(value):
        if isinstance(value, Tensor):
            return value.reshape(()).to(x.dtype)
        return torch.tensor(float(value), dtype=x.dtype)
    return cast(module.tau), cast(module.Vth)


def _step(potential: Optional[Tensor], xj: Tensor, tau: Tensor, vth: Tensor
          ) -> Tuple[Tensor, Tensor]:
    """One LIF step: (output, potential carried to the next step).

    ``max(u, Vth)`` is ``where(u > Vth, u, Vth)`` and ``u * (u <= Vth)`` is
    ``where(u > Vth, 0, u)`` for every finite u, bit for bit; ONNX Runtime
    runs Max, LessOrEqual, Cast and Mul several times faster than a Where
    with a broadcast scalar (measured: half the time of the whole LIF). Only
    u = +inf differs (NaN instead of 0); a LIF input there has overflowed."""
    u = xj if potential is None else tau * potential + xj
    return torch.maximum(u, vth), u * (u <= vth).to(u.dtype)


def grouped_lif(x: Tensor, tau: Tensor, vth: Tensor, group: int, dim: int,
                static: bool = False) -> Tensor:
    """LIF with groups of ``group`` positions along ``dim`` (2 or 3).

    By default with sizes computed from the input (no branch on H or W: one
    graph for every size). ``static=True`` (fixed-size graphs) leaves out
    the head/tail slicing and the concatenation when the axis has no tail:
    two copies of the tensor fewer."""
    length = x.shape[dim]
    processed = length // group * group
    if static and processed == length:
        head, tail = x, None
    else:
        head, tail = x.narrow(dim, 0, processed), x.narrow(dim, processed, length - processed)
    steps = head.unflatten(dim, (-1, group)).unbind(dim + 1)  # one Split
    outs, potential = [], None
    for j in range(group):
        out, potential = _step(potential, steps[j], tau, vth)
        outs.append(out)
    out = torch.stack(outs, dim + 1).flatten(dim, dim + 1)
    return out if tail is None else torch.cat([out, tail], dim)


def _global_lif_loop(x: Tensor, tau: Tensor, vth: Tensor) -> Tensor:
    """Global LIF along dim 0 (the caller moves the axis there): an ONNX Loop.
    The step of :func:`_step`, written out (TorchScript scripts this)."""
    outs = []
    potential = torch.zeros_like(x[0])
    for j in range(x.size(0)):
        u = tau * potential + x[j]
        outs.append(torch.maximum(u, vth))
        potential = u * (u <= vth).to(u.dtype)
    return torch.stack(outs, 0)


@functools.lru_cache(maxsize=None)
def _scripted_global_loop():
    # scripted on first use (torch.jit.script warns that it is deprecated)
    return torch.jit.script(_global_lif_loop)


def _global_scan_step(carry: Tensor, xj: Tensor, tau: Tensor, vth: Tensor
                      ) -> Tuple[Tensor, Tensor]:
    out, potential = _step(carry, xj, tau, vth)
    return potential, out


def global_lif(x: Tensor, tau: Tensor, vth: Tensor, dim: int, exporter: str) -> Tensor:
    """LIF with one group over the whole axis ``dim``, as a loop whose length
    is read from the input at run time."""
    moved = x.movedim(dim, 0)
    if exporter == 'dynamo':
        from torch._higher_order_ops.scan import scan
        _, out = scan(functools.partial(_global_scan_step, tau=tau, vth=vth),
                      torch.zeros_like(moved[0]), moved)
    else:
        out = _scripted_global_loop()(moved, tau, vth)
    return out.movedim(0, dim)


def _lif_forward(module: LIF, exporter: str, static: bool, x: Tensor) -> Tensor:
    if module.group == -1:
        return x
    tau, vth = _params(module, x)
    if module.group is None:
        return global_lif(x, tau, vth, module.dim, exporter)
    return grouped_lif(x, tau, vth, module.group, module.dim, static)


# --------------------------------------------------------------------------
# GroupNorm(1, C) (+ GELU) for float32 graphs
# --------------------------------------------------------------------------


def _norm_act_forward(module: NormAct, x: Tensor) -> Tensor:
    """``GroupNorm(1, C)`` (+ GELU) as reductions and elementwise ops.

    The exporters' own decomposition (InstanceNormalization over an (N, 1,
    C*H*W) view) reduces each sample in one thread in ONNX Runtime and is
    further from PyTorch in float32 (measured on SNN-MLP-T with random
    weights at 1x3x800x1344: 61% of the last stage's elements off by more
    than 1e-4 of its scale, against 2-5% with this formulation). The mean is
    taken per channel first (in parallel), then over the channels (the
    channels are equally large, so this is the mean); the variance from the
    per-channel L2 norms of the centred input (ReduceL2: no tensor of
    squares). Without GELU the affine comes last, as a per-channel Mul and
    Add, so that :func:`~.onnx_export.fold_affine_into_convs` can move it
    into the 1x1 convolution that usually follows."""
    spatial = tuple(range(2, x.dim()))
    mean = x.mean(spatial, keepdim=True).mean(1, keepdim=True)
    centred = x - mean
    norms = torch.linalg.vector_norm(centred, 2, dim=spatial, keepdim=True)
    size = 1
    for d in spatial:
        size = size * x.shape[d]
    var = (norms * norms).mean(1, keepdim=True) / size
    rstd = torch.rsqrt(var + module.eps)
    if module.weight is None:
        y = centred * rstd
        return F.gelu(y) if module.act == 'gelu' else y
    shape = (1, -1) + (1,) * (x.dim() - 2)
    weight, bias = module.weight.view(shape), module.bias.view(shape)
    if module.act == 'gelu':  # one Mul: the scale folded with the weight
        return F.gelu(centred * (rstd * weight) + bias)
    return centred * rstd * weight + bias


# --------------------------------------------------------------------------
# The context manager
# --------------------------------------------------------------------------


def _is_ours(module: nn.Module, name: str) -> bool:
    cls = type(module)
    return cls.__name__ == name and cls.__module__.startswith('mmsnnmlp.')


def check_exportable(model: nn.Module) -> None:
    """Raise :class:`ExportError` for what no exporter can trace."""
    if not model.training:
        return
    checkpointed = [name for name, m in model.named_modules() if getattr(m, 'with_cp', False)]
    if checkpointed:
        raise ExportError(
            f'cannot export a model in training mode with activation checkpointing '
            f'(with_cp=True in {checkpointed[0]!r} and {len(checkpointed) - 1} more): '
            'checkpointing re-runs the forward in backward, which an inference graph '
            'cannot hold. Call model.eval() first (with_cp has no effect in eval mode).')
    raise ExportError('cannot export a model in training mode (dropout and stochastic depth '
                      'are random there); call model.eval() first')


@contextlib.contextmanager
def exportable(model: nn.Module, exporter: str = 'torchscript',
               float64: bool = False, static: bool = False) -> Iterator[nn.Module]:
    """Within the block, ``model`` traces into standard ONNX ops under
    ``exporter`` ('torchscript': ``torch.onnx.export(dynamo=False)``, what
    mmdeploy uses; 'dynamo': ``dynamo=True``). Computes the same as before up
    to float rounding (see the module docstring). ``float64=True`` spells
    convs, norms and GELUs with ops that ONNX Runtime runs in float64 (for
    checking parity, not for speed). ``static=True``: the graph is made for
    the example's H and W only, and may branch on them (faster LIF)."""
    if exporter not in EXPORTERS:
        raise ValueError(f'exporter must be one of {EXPORTERS}, got {exporter!r}')
    check_exportable(model)
    impls: Dict[nn.Module, str] = {}
    swapped = []
    try:
        for module in model.modules():
            if isinstance(module, (LIF, NormAct)):
                impls[module] = module.impl
                module.impl = 'reference'
            if float64 and isinstance(module, NormAct):
                forward = functools.partial(_norm_act64_forward, module)
            elif float64 and type(module) is nn.Conv2d:
                forward = functools.partial(_conv64_forward, module)
            elif float64 and type(module) is nn.GELU and module.approximate == 'none':
                forward = functools.partial(_gelu64_forward, module)
            elif isinstance(module, NormAct):
                forward = functools.partial(_norm_act_forward, module)
            elif isinstance(module, LIF):
                forward = functools.partial(_lif_forward, module, exporter, static)
            elif _is_ours(module, 'PatchEmbed'):
                forward = functools.partial(_patch_embed_forward, module)
            elif _is_ours(module, 'PatchMerging'):
                forward = functools.partial(_patch_merging_forward, module)
            elif type(module) is nn.AdaptiveAvgPool2d:  # UperNet's pyramid pooling
                forward = functools.partial(_adaptive_avg_pool_forward, module)
            else:
                continue
            module.forward = forward  # an instance attribute shadows the class's forward
            swapped.append(module)
        yield model
    finally:
        for module in swapped:
            del module.forward
        for module, impl in impls.items():
            module.impl = impl
