"""Triton kernels of :func:`mmsnnmlp.ops.norm_act`: GroupNorm(1, C) (+ GELU).

Why not PyTorch's GroupNorm kernel: it reduces each (sample, group) in one
thread block, so with one group and batch 1-2 a whole C*H*W reduction runs on
1-2 blocks and the GPU idles. Here each sample's [C, HW] matrix is cut into
tiles of [BLOCK_C, BLOCK_HW]; every tile is one program, so a single sample
fills the GPU.

Forward, three launches:
1. ``forward_kernel(APPLY=False)``: per tile, count, mean and
   M2 = sum((x - mean)^2) of x shifted by the sample's first value, the mean
   first and then the centred squares from registers (never
   E[x^2] - E[x]^2 on raw values).
2. ``merge_kernel``: per sample, merge the tiles' partial statistics
   exactly (Chan et al.): mean = sum(n_i mean_i) / n, then
   M2 = sum(M2_i + n_i (mean_i - mean)^2); writes mean and 1/sqrt(var + eps).
3. ``forward_kernel(APPLY=True)``: y = act((x - mean) * rstd * w + b).

Backward, two launches of one kernel around torch sums of the partials:
1. ``backward_kernel(INPUT_GRAD=False)``: per tile, recompute z and dL/dz, then the
   per-sample partials sum(dxhat) and sum(dxhat * xhat) and the per-channel
   partials of dweight and dbias (one row per (sample, HW tile)).
2. torch sums the partials (deterministic, no atomics).
3. ``backward_kernel(INPUT_GRAD=True)``: dx = rstd * (dxhat - mean(dxhat) - xhat mean(dxhat xhat)).

All statistics and arithmetic are float32 (float64 for float64 input); x, y
and the gradients keep their dtypes. The kernels that read x a second time
walk the tiles in reverse order, so that they start where the previous pass
ended and find its last tiles still in L2 (an unmeasured, free guess).

Portability as in :mod:`.lif_triton`: loop bounds are constexprs, kernels
call only Triton builtins (no helper functions, which would have to be
jitted per interpreter mode), and :func:`.triton_utils.jit` wraps them lazily, so
``TRITON_INTERPRET=1`` runs them on CPU tensors.
"""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from .triton_utils import add_combine, jit, triton

if triton is not None:
    import triton.language as tl
else:  # lets the kernel signatures below parse; nothing here runs without triton
    from types import SimpleNamespace
    tl = SimpleNamespace(constexpr=None)

TILE = 4096  # elements per program (at most; fewer for small tensors)
MAX_BLOCK_HW = 1024  # tile width along HW
MERGE_BLOCK = 1024  # partials merged per step


def forward_kernel(x_ptr, y_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, part_ptr,
                    N, C, HW, tiles_hw, n_tiles,
                    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, CTYPE: tl.constexpr,
                    APPLY: tl.constexpr, AFFINE: tl.constexpr, GELU: tl.constexpr):
    """APPLY=False: a tile's (count, mean, M2) into part[n, tile].
    APPLY=True: y = act((x - mean) * rstd * w + b) over the tile."""
    if APPLY:  # reverse order: begin with the tiles the stats pass read last (L2)
        pid_tile, n = n_tiles - 1 - tl.program_id(0), N - 1 - tl.program_id(1)
    else:
        pid_tile, n = tl.program_id(0), tl.program_id(1)
    c = (pid_tile // tiles_hw) * BLOCK_C + tl.arange(0, BLOCK_C)
    hw = (pid_tile % tiles_hw) * BLOCK_HW + tl.arange(0, BLOCK_HW)
    mask = (c < C)[:, None] & (hw < HW)[None, :]
    offs = n.to(tl.int64) * C * HW + c[:, None].to(tl.int64) * HW + hw[None, :]
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(CTYPE)
    if APPLY:
        z = (x - tl.load(mean_ptr + n)) * tl.load(rstd_ptr + n)
        if AFFINE:
            w = tl.load(w_ptr + c, mask=c < C, other=0.0).to(CTYPE)
            b = tl.load(b_ptr + c, mask=c < C, other=0.0).to(CTYPE)
            z = z * w[:, None] + b[:, None]
        if GELU:  # erf GELU, as nn.GELU()
            z = 0.5 * z * (1.0 + tl.math.erf(z * 0.7071067811865476))
        tl.store(y_ptr + offs, z.to(y_ptr.dtype.element_ty), mask=mask)
    else:
        # statistics of x - x[n, 0]: when |mean| >> std, sums of raw values
        # would round away the digits that the variance needs
        shifted = tl.where(mask, x - tl.load(x_ptr + n.to(tl.int64) * C * HW).to(CTYPE), 0.0)
        ones = tl.where(mask, 1.0, 0.0).to(CTYPE)
        count = tl.reduce(tl.reduce(ones, 1, add_combine), 0, add_combine)
        mean = tl.reduce(tl.reduce(shifted, 1, add_combine), 0, add_combine) / count
        centred = tl.where(mask, shifted - mean, 0.0)
        m2 = tl.reduce(tl.reduce(centred * centred, 1, add_combine), 0, add_combine)
        base = part_ptr + (n.to(tl.int64) * n_tiles + pid_tile) * 3
        tl.store(base, count)
        tl.store(base + 1, mean)
        tl.store(base + 2, m2)


def merge_kernel(x_ptr, part_ptr, mean_ptr, rstd_ptr, n_tiles, numel, eps,
                  BLOCK: tl.constexpr, STEPS: tl.constexpr, CTYPE: tl.constexpr):
    """One program per sample merges its tiles; STEPS * BLOCK >= n_tiles."""
    n = tl.program_id(0)
    base = part_ptr + n.to(tl.int64) * n_tiles * 3
    total = tl.full([BLOCK], 0.0, CTYPE)
    for s in range(0, STEPS):
        i = s * BLOCK + tl.arange(0, BLOCK)
        ok = i < n_tiles
        count = tl.load(base + i * 3, mask=ok, other=0.0)
        total += count * tl.load(base + i * 3 + 1, mask=ok, other=0.0)
    mean = tl.reduce(total, 0, add_combine) / numel  # of x - shift
    m2 = tl.full([BLOCK], 0.0, CTYPE)
    for s in range(0, STEPS):
        i = s * BLOCK + tl.arange(0, BLOCK)
        ok = i < n_tiles
        count = tl.load(base + i * 3, mask=ok, other=0.0)
        delta = tl.load(base + i * 3 + 1, mask=ok, other=0.0) - mean
        m2 += tl.load(base + i * 3 + 2, mask=ok, other=0.0) + count * delta * delta
    var = tl.reduce(m2, 0, add_combine) / numel
    tl.store(mean_ptr + n, mean + tl.load(x_ptr + n.to(tl.int64) * numel).to(CTYPE))
    tl.store(rstd_ptr + n, 1.0 / tl.sqrt(var + eps))


def backward_kernel(x_ptr, g_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, part_ptr, cpart_ptr,
                     sums_ptr, dx_ptr, N, C, HW, tiles_hw, n_tiles, numel,
                     BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, CTYPE: tl.constexpr,
                     INPUT_GRAD: tl.constexpr, AFFINE: tl.constexpr, GELU: tl.constexpr):
    """Both passes recompute xhat and dL/dz = g act'(z) for the tile.
    INPUT_GRAD=False: partial sums of dxhat and dxhat * xhat per sample, and
    of dweight / dbias per channel. INPUT_GRAD=True: dx from the summed
    partials in sums[n] (reverse tile order, as in the forward apply)."""
    if INPUT_GRAD:
        pid_tile, n = n_tiles - 1 - tl.program_id(0), N - 1 - tl.program_id(1)
    else:
        pid_tile, n = tl.program_id(0), tl.program_id(1)
    c = (pid_tile // tiles_hw) * BLOCK_C + tl.arange(0, BLOCK_C)
    hw = (pid_tile % tiles_hw) * BLOCK_HW + tl.arange(0, BLOCK_HW)
    mask = (c < C)[:, None] & (hw < HW)[None, :]
    offs = n.to(tl.int64) * C * HW + c[:, None].to(tl.int64) * HW + hw[None, :]
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(CTYPE)
    gz = tl.load(g_ptr + offs, mask=mask, other=0.0).to(CTYPE)
    rstd = tl.load(rstd_ptr + n)
    xhat = tl.where(mask, (x - tl.load(mean_ptr + n)) * rstd, 0.0)
    if AFFINE:
        w = tl.load(w_ptr + c, mask=c < C, other=0.0).to(CTYPE)[:, None]
        z = xhat * w + tl.load(b_ptr + c, mask=c < C, other=0.0).to(CTYPE)[:, None]
    else:
        z = xhat
    if GELU:  # d gelu(z) / dz = Phi(z) + z phi(z)
        cdf = 0.5 * (1.0 + tl.math.erf(z * 0.7071067811865476))
        gz = gz * (cdf + z * tl.exp(-0.5 * z * z) * 0.3989422804014327)
    if AFFINE:
        gxhat = gz * w
    else:
        gxhat = gz
    if INPUT_GRAD:
        mean_g = tl.load(sums_ptr + n * 2) / numel
        mean_gx = tl.load(sums_ptr + n * 2 + 1) / numel
        dx = rstd * (gxhat - mean_g - xhat * mean_gx)
        tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)
    else:
        base = part_ptr + (n.to(tl.int64) * n_tiles + pid_tile) * 2
        tl.store(base, tl.reduce(tl.reduce(gxhat, 1, add_combine), 0, add_combine))
        tl.store(base + 1, tl.reduce(tl.reduce(gxhat * xhat, 1, add_combine), 0,
                                     add_combine))
        if AFFINE:
            # cpart[0 | 1, n * tiles_hw + hw tile, c]: dweight | dbias partials
            row = n.to(tl.int64) * tiles_hw + pid_tile % tiles_hw
            ok = c < C
            tl.store(cpart_ptr + row * C + c, tl.reduce(gz * xhat, 1, add_combine), mask=ok)
            tl.store(cpart_ptr + (N * tiles_hw + row) * C + c, tl.reduce(gz, 1, add_combine),
                     mask=ok)


# --------------------------------------------------------------------------
# Host side
# --------------------------------------------------------------------------


def _layout(x: Tensor):
    n, c = x.shape[:2]
    hw = math.prod(x.shape[2:])
    block_hw = min(triton.next_power_of_2(max(hw, 1)), MAX_BLOCK_HW)
    block_c = max(1, min(triton.next_power_of_2(c), TILE // block_hw))
    tiles_hw = triton.cdiv(hw, block_hw)
    n_tiles = triton.cdiv(c, block_c) * tiles_hw
    ctype = torch.float64 if x.dtype == torch.float64 else torch.float32
    meta = dict(BLOCK_C=block_c, BLOCK_HW=block_hw,
                CTYPE=tl.float64 if ctype == torch.float64 else tl.float32,
                num_warps=4 if block_c * block_hw >= 1024 else 1)
    return n, c, hw, tiles_hw, n_tiles, ctype, meta


def forward(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], eps: float,
            act: str, out_dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    """(y, mean, rstd): y = act(group_norm(x, 1, weight, bias, eps)) in
    ``out_dtype``; mean and rstd per sample, in the compute dtype."""
    x = x.contiguous()
    n, c, hw, tiles_hw, n_tiles, ctype, meta = _layout(x)
    y = torch.empty(x.shape, dtype=out_dtype, device=x.device)
    mean = torch.empty(n, dtype=ctype, device=x.device)
    rstd = torch.empty(n, dtype=ctype, device=x.device)
    if x.numel() == 0:
        return y, mean.fill_(float('nan')), rstd.fill_(float('nan'))
    part = torch.empty((n, n_tiles, 3), dtype=ctype, device=x.device)
    affine = weight is not None
    args = (x, y, weight if affine else x, bias if affine else x, mean, rstd, part,
            n, c, hw, tiles_hw, n_tiles)
    flags = dict(AFFINE=affine, GELU=act == 'gelu', **meta)
    kernel = jit(forward_kernel)
    kernel[(n_tiles, n)](*args, APPLY=False, **flags)
    steps = triton.next_power_of_2(triton.cdiv(n_tiles, MERGE_BLOCK))
    block = min(MERGE_BLOCK, triton.next_power_of_2(n_tiles))
    jit(merge_kernel)[(n,)](x, part, mean, rstd, n_tiles, c * hw, eps, BLOCK=block, STEPS=steps,
                             CTYPE=meta['CTYPE'], num_warps=4)
    kernel[(n_tiles, n)](*args, APPLY=True, **flags)
    return y, mean, rstd


def backward(grad: Tensor, x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor],
             mean: Tensor, rstd: Tensor, act: str
             ) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    """(dx, dweight, dbias); the parameter gradients are None without weight."""
    x, grad = x.contiguous(), grad.contiguous()
    n, c, hw, tiles_hw, n_tiles, ctype, meta = _layout(x)
    dx = x.new_empty(x.shape)
    affine = weight is not None
    if x.numel() == 0:
        zeros = torch.zeros(c, dtype=ctype, device=x.device) if affine else None
        return dx, zeros, zeros
    part = torch.empty((n, n_tiles, 2), dtype=ctype, device=x.device)
    cpart = torch.empty((2, n * tiles_hw, c) if affine else (1,), dtype=ctype, device=x.device)
    sums = torch.empty((n, 2), dtype=ctype, device=x.device)
    args = (x, grad, weight if affine else x, bias if affine else x, mean, rstd, part, cpart,
            sums, dx, n, c, hw, tiles_hw, n_tiles, c * hw)
    flags = dict(AFFINE=affine, GELU=act == 'gelu', **meta)
    kernel = jit(backward_kernel)
    kernel[(n_tiles, n)](*args, INPUT_GRAD=False, **flags)
    torch.sum(part, dim=1, out=sums)
    kernel[(n_tiles, n)](*args, INPUT_GRAD=True, **flags)
    if not affine:
        return dx, None, None
    return dx, cpart[0].sum(dim=0), cpart[1].sum(dim=0)  # separate tensors: no aliasing
