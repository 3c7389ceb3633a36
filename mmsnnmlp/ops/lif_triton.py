"""Fused LIF kernels in Triton: one launch for forward, one for backward.

Same semantics as :func:`mmsnnmlp.ops.lif.lif_reference`.

Layout. An NCHW tensor is viewed as ``[outer, length, inner]`` where
``length`` is the LIF axis: along H, ``outer = N*C`` and ``inner = W``; along
W, ``outer = N*C*H`` and ``inner = 1``. A *line* is one group of ``group``
consecutive positions along ``length`` at fixed (outer, inner); lines are
independent, so each Triton lane owns one line and walks it sequentially
with the membrane potential in registers. One extra group per (outer, inner)
covers the ``length % group`` tail rows, which are copied through.

* Along H, adjacent lanes take adjacent ``w`` (one program = one (plane,
  group) pair and a block of ``w``): every step is a fully coalesced row load.
* Along W, adjacent lanes take adjacent groups of the same row: a step loads
  every ``group``-th element, and the ``group`` steps of a program together
  consume one contiguous span, so the cache lines fetched by the first step
  are reused by the next ones.

Arithmetic is float32 (float64 for float64 input); inputs and outputs keep
their dtype. FMA contraction is disabled so that ``tau * o + x`` rounds
exactly like the two separate PyTorch ops of the reference.

Backward recomputes the recurrence (only ``x`` is saved). dL/dtau is
accumulated forward-mode (du_j/dtau is carried beside u_j), so the reverse
scan for dL/dx needs only the spike bits; those are parked in the dx buffer
itself (0/1 are exact in every float dtype) and overwritten by the scan, so
backward needs no scratch memory. dtau/dVth are reduced per program into a
partials buffer and summed with torch: deterministic, no atomics.

Tests run these kernels on CPU tensors under ``TRITON_INTERPRET=1``
(``impl='triton'``); :func:`mmsnnmlp.ops.triton_utils.jit` wraps them lazily, per
interpreter flag. Autograd lives in :mod:`.lif` (the ``mmsnnmlp::lif`` op).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from .triton_utils import NO_FP_FUSION, add_combine, jit, triton

if triton is not None:
    import triton.language as tl
else:  # lets the kernel signature below parse; nothing here runs without triton
    from types import SimpleNamespace
    tl = SimpleNamespace(constexpr=None)

# --------------------------------------------------------------------------
# Kernel
# --------------------------------------------------------------------------
# Portability (triton 2.1 to 3.8, compiled and interpreted): the kernels use
# only Triton builtins plus triton_utils.add_combine (tl.sum/tl.zeros are jit
# functions made at import, which the interpreter refuses unless
# TRITON_INTERPRET was set before that import), and every loop bound is a
# constexpr (the triton 3.6 interpreter cannot turn a runtime int into a
# range() bound under numpy >= 2.4).


def lif_kernel(x_ptr, g_ptr, y_ptr, part_tau_ptr, part_vth_ptr, tau_ptr, vth_ptr,
               n_lines, length, inner, group, groups_per_line,
               ALONG_W: tl.constexpr, BACKWARD: tl.constexpr, BLOCK: tl.constexpr,
               MAX_GROUP: tl.constexpr):
    """Forward (BACKWARD=False): y = LIF(x).

    Backward: y = dL/dx given g = dL/dout, and this program's partial sums of
    dL/dtau and dL/dVth. One kernel for both so that the line layout and the
    recurrence are written once. MAX_GROUP >= group is the (power of two)
    loop bound; steps past the group are masked."""
    # -- the line each lane owns: start offset, step stride, valid steps ----
    if ALONG_W:
        # inner == 1; lanes = consecutive (row, group) pairs, group fastest
        q = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        k = q % groups_per_line
        start = (q // groups_per_line) * length + k * group
        lane_ok = q < n_lines
        stride = 1
        pid = tl.program_id(0)
    else:
        # program row = one (plane, group) pair; lanes = a block of columns
        pg = tl.program_id(0).to(tl.int64)
        k = pg % groups_per_line
        col = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        start = ((pg // groups_per_line) * length + k * group) * inner + col
        lane_ok = col < inner
        stride = inner
        pid = pg * tl.num_programs(1) + tl.program_id(1)
    # full groups take `group` steps, the tail group only length % group
    n_valid = tl.minimum(group, length - k * group)
    full = n_valid == group

    tau = tl.load(tau_ptr)  # the host passes them in the compute dtype
    vth = tl.load(vth_ptr)
    potential = tl.full([BLOCK], 0.0, tau.dtype)  # o_j
    d_potential = tl.full([BLOCK], 0.0, tau.dtype)  # d o_j / d tau
    acc_tau = tl.full([BLOCK], 0.0, tau.dtype)
    acc_vth = tl.full([BLOCK], 0.0, tau.dtype)
    # Forward recurrence (also the recomputation in backward). Masked lanes
    # and steps load zeros, so they add nothing to the sums.
    for j in range(0, MAX_GROUP):
        ok = lane_ok & (j < n_valid)
        offs = start + j * stride
        xj = tl.load(x_ptr + offs, mask=ok, other=0.0).to(tau.dtype)
        u = tau * potential + xj
        fired = u > vth
        if BACKWARD:
            gj = tl.load(g_ptr + offs, mask=ok, other=0.0).to(tau.dtype)
            du = potential + tau * d_potential  # du_j/dtau = o_j + tau do_j/dtau
            acc_tau += tl.where(full & fired, gj * du, 0.0)
            acc_vth += tl.where(full & (u <= vth), gj, 0.0)
            d_potential = tl.where(fired, 0.0, du)
            # park the spike bit where dx_j will go (via a float: the
            # interpreter cannot cast bool to bfloat16 directly)
            spike = tl.where(fired, 1.0, 0.0)
            tl.store(y_ptr + offs, spike.to(y_ptr.dtype.element_ty), mask=ok)
        else:
            y = tl.where(full, tl.where(fired, u, vth), xj)  # tail: copy x
            tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=ok)
        potential = tl.where(fired, 0.0, u)

    if BACKWARD:
        # Every lane reads back only what it wrote; the barrier just pins
        # that order for the compiler.
        tl.debug_barrier()
        # Reverse scan: dL/du_j = f_j g_j + tau (1 - f_j) dL/du_{j+1}.
        adj = tl.full([BLOCK], 0.0, tau.dtype)
        for jj in range(0, MAX_GROUP):
            j = group - 1 - jj
            ok = lane_ok & (j >= 0) & (j < n_valid)
            offs = start + j * stride
            gj = tl.load(g_ptr + offs, mask=ok, other=0.0).to(tau.dtype)
            fired = tl.load(y_ptr + offs, mask=ok, other=0.0) != 0
            adj = tl.where(full, tl.where(fired, gj, tau * adj), gj)  # tail: copy g
            tl.store(y_ptr + offs, adj.to(y_ptr.dtype.element_ty), mask=ok)
        tl.store(part_tau_ptr + pid, tl.reduce(acc_tau, 0, add_combine))
        tl.store(part_vth_ptr + pid, tl.reduce(acc_vth, 0, add_combine))


# --------------------------------------------------------------------------
# Host side
# --------------------------------------------------------------------------


def _launch(x: Tensor, g: Optional[Tensor], y: Tensor, tau: Tensor, vth: Tensor,
            group: Optional[int], dim: int) -> Optional[Tensor]:
    """Run the kernel over contiguous NCHW ``x`` (and ``g`` in backward),
    writing ``y``. Returns the (2, programs) dtau/dvth partials in backward."""
    n, c, h, w = x.shape
    along_w = dim == 3
    # [outer, length, inner] view of the tensor, the LIF axis in the middle
    outer, length, inner = (n * c * h, w, 1) if along_w else (n * c, h, w)
    size = length if group is None else group
    # full groups plus one tail group when length % size != 0
    groups_per_line = -(-length // size)
    n_lines = outer * groups_per_line * inner
    if along_w:
        block = min(512, max(16, triton.next_power_of_2(n_lines)))
        grid = (triton.cdiv(n_lines, block),)
    else:
        block = min(512, max(16, triton.next_power_of_2(inner)))
        grid = (outer * groups_per_line, triton.cdiv(inner, block))
    backward = g is not None
    partials = None
    if backward:
        n_prog = grid[0] * (grid[1] if len(grid) > 1 else 1)
        partials = torch.empty((2, n_prog), dtype=tau.dtype, device=x.device)
    part = partials if backward else (y, y)  # unused pointers in forward
    jit(lif_kernel)[grid](
        x, g if backward else x, y, part[0], part[1], tau, vth,
        n_lines, length, inner, size, groups_per_line,
        ALONG_W=along_w, BACKWARD=backward, BLOCK=block,
        MAX_GROUP=triton.next_power_of_2(size),
        num_warps=max(1, min(4, block // 128)),
        # no FMA contraction: round tau * o + x like the reference's two ops
        **NO_FP_FUSION)
    return partials


def _compute_params(x: Tensor, tau: Tensor, vth: Tensor) -> Tuple[Tensor, Tensor]:
    """tau and Vth as one-element tensors in the compute dtype, on x's device
    (a tiny device copy: no host synchronisation via .item())."""
    ctype = torch.float64 if x.dtype == torch.float64 else torch.float32
    return (tau.detach().reshape(1).to(device=x.device, dtype=ctype),
            vth.detach().reshape(1).to(device=x.device, dtype=ctype))


def forward(x: Tensor, tau: Tensor, vth: Tensor, group: Optional[int], dim: int) -> Tensor:
    """LIF of NCHW ``x`` along ``dim`` (2 or 3); same dtype as ``x``, always
    contiguous. ``tau``/``vth`` are one-element tensors."""
    x = x.contiguous()
    out = x.new_empty(x.shape)
    if x.numel():
        tau_c, vth_c = _compute_params(x, tau, vth)
        _launch(x, None, out, tau_c, vth_c, group, dim)
    return out


def backward(grad: Tensor, x: Tensor, tau: Tensor, vth: Tensor, group: Optional[int],
             dim: int) -> Tuple[Tensor, Tensor, Tensor]:
    """(dL/dx, dL/dtau, dL/dVth) given dL/dout = ``grad``."""
    x, g = x.contiguous(), grad.to(x.dtype).contiguous()
    grad_x = x.new_empty(x.shape)
    tau_c, vth_c = _compute_params(x, tau, vth)
    if x.numel():
        partials = _launch(x, g, grad_x, tau_c, vth_c, group, dim)
    else:
        partials = torch.zeros((2, 1), dtype=tau_c.dtype, device=x.device)
    # two separate sums: library ops may not return views of one tensor
    return (grad_x, partials[0].sum().reshape(tau.shape).to(tau.dtype),
            partials[1].sum().reshape(vth.shape).to(vth.dtype))
