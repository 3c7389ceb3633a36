"""Full-precision LIF (leaky integrate-and-fire) token mixing along H or W.

Semantics: the chosen axis is cut into groups of ``group``
consecutive positions starting at 0; only the full groups are processed, the
tail passes through. Within a group, per position along the other axes::

    o_0 = 0
    u_j = tau * o_j + x_j
    f_j = u_j > Vth
    out_j = u_j if f_j else Vth
    o_{j+1} = 0 if f_j else u_j

Gradients treat the spike ``f`` as a constant. ``group=None`` makes one group of
the whole axis (the paper's "global LIF").

:func:`lif` is the op the model uses (``impl``: see :mod:`.dispatch`): a
library op ``mmsnnmlp::lif`` that saves only its input and recomputes the
cheap recurrence in backward, in float32 for reduced precision. The PyTorch
path below runs on any device; :mod:`.lif_triton` holds the CUDA kernels.
:func:`lif_reference` is the same math as plain differentiable PyTorch ops,
the oracle for every fast path (``impl='reference'``). The module
:class:`~mmsnnmlp.ops.LIF` lives in :mod:`.modules`.
"""
import math
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from . import dispatch, lif_triton
from .library import compute_dtype, define_op, like

Scalar = Union[float, Tensor]


def _check_args(x: Tensor, group: Optional[int], dim: int) -> int:
    if x.dim() != 4:
        raise ValueError(f'lif expects an NCHW tensor, got shape {tuple(x.shape)}')
    if not x.is_floating_point():
        raise ValueError(f'lif expects a floating point tensor, got {x.dtype}')
    if dim not in (2, 3, -2, -1):
        raise ValueError(f'lif runs along H (dim=2) or W (dim=3), got dim={dim}')
    if group is not None and (isinstance(group, bool) or not isinstance(group, int) or group < 1):
        raise ValueError(f'lif group must be an int >= 1 or None (global), got {group!r}')
    return dim % 4


def _as_param(value: Scalar, like: Tensor) -> Tensor:
    if not isinstance(value, Tensor):
        value = torch.tensor([float(value)], dtype=compute_dtype(like))
    if value.numel() != 1:
        raise ValueError(f'tau and Vth must hold one value, got shape {tuple(value.shape)}')
    return value.to(device=like.device)


def _split_groups(t: Tensor, dim: int, group: Optional[int]) -> Tuple[Optional[Tensor], int]:
    """View the processed part of ``t`` as (..., n_groups, group, ...).

    Returns (view or None if nothing is processed, group size)."""
    length = t.shape[dim]
    size = length if group is None else group
    n_groups = length // size if size > 0 else 0
    if n_groups == 0:
        return None, size
    return t.narrow(dim, 0, n_groups * size).unflatten(dim, (n_groups, size)), size


# --------------------------------------------------------------------------
# PyTorch path (any device)
# --------------------------------------------------------------------------


def _tail(t: Tensor, dim: int, processed: int) -> Tensor:
    return t.narrow(dim, processed, t.shape[dim] - processed)


def _cpu_threshold(vth: Tensor) -> Optional[float]:
    """For CPU tensors: ``-next`` where ``next`` is the first value above Vth in
    its dtype, so that ``u > Vth`` is exactly ``-u <= -next`` (what
    ``F.threshold`` tests); None when Vth is not finite (left to the generic path).

    Why: ``torch.where`` and ``torch.fmax`` on CPU branch per element and
    mispredict on spike masks (about 7 and 4 ns per value here, against 0.5 for
    the vectorised ``clamp_min``, ``neg`` and ``threshold``)."""
    value = vth.item()
    if not math.isfinite(value):
        return None
    return -torch.nextafter(vth, torch.full_like(vth, math.inf)).item()


def _torch_forward(x: Tensor, tau: Tensor, vth: Tensor, group: Optional[int],
                   dim: int) -> Tensor:
    """The recurrence with out= ops into preallocated buffers (no temporaries
    per step), in x's memory layout.

    On CPU, with ``q = -o`` (minus the carried potential), each step is four
    vectorised passes: ``u = x - q * tau``, ``out = clamp_min(u, Vth)``,
    ``q = threshold(-u, -next(Vth), -0.0)`` (0 after a spike, else -u); then
    one ``nan_to_num`` turns NaN outputs into Vth. Elsewhere ``fmax(u, Vth)``
    is ``where(u > Vth, u, Vth)`` for every input, NaN included (fmax ignores
    a NaN), and ``where`` resets the potential. The product and the sum are
    rounded apart, as in the reference: ``addcmul`` fuses them (FMA) and
    would flip spikes against every other path."""
    ctype = compute_dtype(x)
    xc = x.to(ctype)
    out = torch.empty_like(xc)
    xv, size = _split_groups(xc, dim, group)
    if xv is None:
        return out.copy_(xc).to(x.dtype)
    processed = xv.shape[dim] * size
    if processed < x.shape[dim]:  # the tail passes through unchanged
        _tail(out, dim, processed).copy_(_tail(xc, dim, processed))
    outv, _ = _split_groups(out, dim, group)
    tau_c, vth_c = tau.to(ctype).reshape(()), vth.to(ctype).reshape(())
    step = dim + 1
    u = xv.select(step, 0)  # o_0 = 0: u_0 is x_0 itself
    buffer = torch.empty_like(outv.select(step, 0)) if size > 1 else u
    threshold = _cpu_threshold(vth_c) if x.device.type == 'cpu' else None
    if threshold is not None:
        vth_f = vth_c.item()
        minus_o = torch.empty_like(buffer)
        for j in range(size):
            if j > 0:
                u = torch.sub(xv.select(step, j), torch.mul(minus_o, tau_c, out=buffer),
                              out=buffer)
            torch.clamp_min(u, vth_f, out=outv.select(step, j))
            if j < size - 1:
                F.threshold_(torch.neg(u, out=minus_o), threshold, -0.0)  # reset after a spike
        torch.nan_to_num_(out.narrow(dim, 0, processed), nan=vth_f, posinf=math.inf,
                          neginf=-math.inf)  # NaN never fires: Vth, as where(u > Vth, u, Vth)
        return out.to(x.dtype)
    zero = torch.zeros((), dtype=ctype, device=x.device)
    potential = torch.empty_like(buffer)
    fired = torch.empty_like(buffer, dtype=torch.bool)
    for j in range(size):
        if j > 0:
            u = torch.mul(potential, tau_c, out=buffer).add_(xv.select(step, j))  # tau * o + x
        torch.fmax(u, vth_c, out=outv.select(step, j))
        if j < size - 1:
            torch.gt(u, vth_c, out=fired)
            torch.where(fired, zero, u, out=potential)  # reset after a spike
    return out.to(x.dtype)


_BITS = {torch.float32: torch.int32, torch.float64: torch.int64}


def _select(mask: Tensor, a: Tensor, b: Tensor, out: Tensor) -> Tensor:
    """``where(mask, a, b)`` into ``out`` for an integer ``mask`` of -1 (all bits
    set) or 0, as ``b ^ ((a ^ b) & mask)`` on the bits: exact for every value,
    and vectorised on CPU where ``where`` is not."""
    bits = _BITS[out.dtype]
    o = torch.bitwise_xor(a.view(bits), b.view(bits), out=out.view(bits))
    return o.bitwise_and_(mask).bitwise_xor_(b.view(bits)).view(out.dtype)


def _torch_backward(grad: Tensor, x: Tensor, tau: Tensor, vth: Tensor, group: Optional[int],
                    dim: int) -> Tuple[Tensor, Tensor, Tensor]:
    ctype = compute_dtype(x)
    xc = x.to(ctype)
    tau_c, vth_c = tau.to(ctype).reshape(()), vth.to(ctype).reshape(())
    g = grad.to(ctype)
    grad_x = torch.empty_like(xc)
    grad_tau = torch.zeros((), dtype=ctype, device=x.device)
    grad_vth = torch.zeros((), dtype=ctype, device=x.device)
    xv, size = _split_groups(xc, dim, group)
    if xv is None:
        grad_x.copy_(g)
    else:
        processed = xv.shape[dim] * size
        if processed < x.shape[dim]:  # the tail copies its gradient
            _tail(grad_x, dim, processed).copy_(_tail(g, dim, processed))
        gv, _ = _split_groups(g, dim, group)
        gxv, _ = _split_groups(grad_x, dim, group)
        step = dim + 1
        threshold = _cpu_threshold(vth_c) if x.device.type == 'cpu' else None
        if threshold is not None:
            grad_tau, grad_vth = _cpu_backward(xv, gv, gxv, tau_c, vth_c, threshold, size, step)
        else:
            zero = torch.zeros((), dtype=ctype, device=x.device)
            # Recompute the forward recurrence: spikes and carried potentials.
            fired, carried = [], [None]
            for j in range(size):
                u = xv.select(step, j)
                if carried[-1] is not None:
                    u = torch.mul(carried[-1], tau_c).add_(u)
                f = u > vth_c
                fired.append(f)
                if j < size - 1:
                    carried.append(torch.where(f, zero, u))
            adj = None  # dL/du_{j+1}, written into grad_x
            for j in reversed(range(size)):
                gj, f, dst = gv.select(step, j), fired[j], gxv.select(step, j)
                torch.where(f, gj, zero if adj is None else adj * tau_c, out=dst)
                adj = dst
                if carried[j] is not None:
                    grad_tau = grad_tau + torch.mul(adj, carried[j]).sum()
                grad_vth = grad_vth + torch.where(f, zero, gj).sum()
    return (grad_x.to(x.dtype), grad_tau.reshape(tau.shape).to(tau.dtype),
            grad_vth.reshape(vth.shape).to(vth.dtype))


def _cpu_backward(xv: Tensor, gv: Tensor, gxv: Tensor, tau: Tensor, vth: Tensor,
                  threshold: float, size: int, step: int) -> Tuple[Tensor, Tensor]:
    """The backward on CPU with vectorised ops only (see :func:`_cpu_threshold`
    and :func:`_select`); writes dL/dx into ``gxv``, returns (dL/dtau, dL/dVth)."""
    bits = _BITS[xv.dtype]
    vth_f = vth.item()
    masks, minus_o = [], [None]  # -1 where u_j fires, else 0; -o_{j+1}
    for j in range(size):
        u = xv.select(step, j)
        if minus_o[-1] is not None:
            u = torch.sub(u, torch.mul(minus_o[-1], tau))
        masks.append(torch.gt(u, vth_f).to(bits).neg_())
        if j < size - 1:
            minus_o.append(F.threshold_(torch.neg(u), threshold, -0.0))
    sums_tau, sums_vth = [], []
    adj = None  # dL/du_{j+1}, written into grad_x
    for j in reversed(range(size)):
        gj, mask, dst = gv.select(step, j), masks[j], gxv.select(step, j)
        if adj is None:  # the last step: g where it fires, else +0.0
            torch.bitwise_and(gj.view(bits), mask, out=dst.view(bits))
        else:
            _select(mask, gj, adj * tau, dst)
        adj = dst
        if minus_o[j] is not None:
            sums_tau.append(torch.mul(adj, minus_o[j]).sum())
        sums_vth.append(torch.bitwise_and(gj.view(bits), mask.bitwise_not_()).view(xv.dtype).sum())
    return -torch.stack(sums_tau).sum() if sums_tau else tau.new_zeros(()), \
        torch.stack(sums_vth).sum()


# --------------------------------------------------------------------------
# The library op: mmsnnmlp::lif and its backward
# --------------------------------------------------------------------------


def _lif_forward(x: Tensor, tau: Tensor, vth: Tensor, group: Optional[int], dim: int,
                 impl: str) -> Tensor:
    return dispatch.run('lif', impl, x,
                        lambda: like(x, lif_triton.forward(x, tau, vth, group, dim)),
                        lambda: _torch_forward(x, tau, vth, group, dim))


def _lif_forward_fake(x, tau, vth, group, dim, impl):
    return torch.empty_like(x)


def _lif_backward(grad: Tensor, x: Tensor, tau: Tensor, vth: Tensor, group: Optional[int],
                  dim: int, impl: str) -> Tuple[Tensor, Tensor, Tensor]:
    grad_x, grad_tau, grad_vth = dispatch.run(
        'lif', impl, x, lambda: lif_triton.backward(grad, x, tau, vth, group, dim),
        lambda: _torch_backward(grad, x, tau, vth, group, dim))
    return like(x, grad_x), grad_tau, grad_vth


def _lif_backward_fake(grad, x, tau, vth, group, dim, impl):
    return torch.empty_like(x), tau.new_empty(tau.shape), vth.new_empty(vth.shape)


_lif_backward_op = define_op('lif_backward', _lif_backward, _lif_backward_fake)


def _setup_context(ctx, inputs, output):
    x, tau, vth, group, dim, impl = inputs
    ctx.save_for_backward(x, tau, vth)
    ctx.group, ctx.dim, ctx.impl = group, dim, impl


def _backward(ctx, grad):
    x, tau, vth = ctx.saved_tensors
    grad_x, grad_tau, grad_vth = _lif_backward_op(grad, x, tau, vth, ctx.group, ctx.dim,
                                                  ctx.impl)
    return (grad_x, grad_tau if ctx.needs_input_grad[1] else None,
            grad_vth if ctx.needs_input_grad[2] else None, None, None, None)


_lif_op = define_op('lif', _lif_forward, _lif_forward_fake, _backward, _setup_context)


def lif(x: Tensor, tau: Scalar, vth: Scalar, group: Optional[int] = 4, dim: int = 2,
        impl: str = 'auto') -> Tensor:
    """LIF along H (``dim=2``) or W (``dim=3``) of an NCHW tensor.

    Args:
        x (Tensor): input of shape (N, C, H, W), any float dtype; the output
            has the same dtype (computed in float32, float64 for float64).
        tau (float | Tensor): leak factor, one value (learnable if a tensor).
        vth (float | Tensor): firing threshold, one value.
        group (int | None): positions per group; None for one group over the
            whole axis. Default: 4.
        dim (int): 2 for H, 3 for W. Default: 2.
        impl (str): 'auto', 'torch', 'triton' or 'reference' (see
            :mod:`mmsnnmlp.ops.dispatch`). Default: 'auto'.
    """
    dim = _check_args(x, group, dim)
    dispatch.check_impl(impl)
    if dispatch.traces_reference(x, impl):
        return lif_reference(x, tau, vth, group, dim)
    tau, vth = _as_param(tau, x), _as_param(vth, x)
    if not dispatch.is_compiling() and not (torch.is_grad_enabled() and (
            x.requires_grad or tau.requires_grad or vth.requires_grad)):
        return _lif_forward(x, tau, vth, group, dim, impl)  # no backward: no op needed
    return _lif_op(x, tau, vth, group, dim, impl)



def _potentials(x: Tensor, tau: Tensor, vth: Tensor, group: Optional[int],
                dim: int) -> Optional[Tensor]:
    """``u`` on the full groups of ``x`` along ``dim`` (in x's layout), or None
    when there is no full group. TorchScript-able."""
    length = x.size(dim)
    size = length if group is None else group
    n_groups = length // size if size > 0 else 0
    if n_groups == 0:
        return None
    xv = x.narrow(dim, 0, n_groups * size).unflatten(dim, [n_groups, size])
    step = dim + 1
    potentials: List[Tensor] = []
    potential: Optional[Tensor] = None
    for j in range(size):
        u = xv.select(step, j)
        if potential is not None:
            u = tau * potential + u
        potentials.append(u)
        if j < size - 1:
            # reset after a spike; a scalar fill, not zeros_like(u): compiled for
            # changing sizes, a copy of u's (view) strides is one inductor cannot order
            potential = u.masked_fill(u > vth, 0.0)
    return torch.stack(potentials, step).flatten(dim, step)


def _with_tail(processed: Tensor, tail: Tensor, dim: int) -> Tensor:
    """``processed`` followed along ``dim`` by the positions of ``tail`` after it."""
    rest = tail.narrow(dim, processed.size(dim), tail.size(dim) - processed.size(dim))
    return torch.cat([processed, rest], dim)


def reference(x: Tensor, tau: Tensor, vth: Tensor, group: Optional[int], dim: int) -> Tensor:
    """:func:`lif_reference` on checked arguments (tau, Vth: one-value tensors;
    ``dim`` 2 or 3); TorchScript-able, so that scripted models run it.

    The output is ``where(u > Vth, u, Vth)`` computed once on the re-assembled
    potentials: a new tensor, never a view of the stacked steps, whose
    symbolic strides inductor cannot order when compiled for changing sizes."""
    u = _potentials(x, tau, vth, group, dim)
    if u is None:
        # Nothing is processed. tau and Vth still get (zero) gradients, as from
        # the fused ops, so an optimiser treats them alike whichever path ran:
        # an empty sum is +0.0, and x - 0.0 keeps every value, -0.0 included.
        return x - (tau[:0].sum() + vth[:0].sum()).to(x.dtype)
    return _with_tail(torch.where(u > vth, u, vth), x, dim)


def lif_reference(x: Tensor, tau: Scalar, vth: Scalar, group: Optional[int] = 4,
                  dim: int = 2) -> Tensor:
    """Unfused oracle: the recurrence as differentiable PyTorch ops.

    Autograd through ``where`` with a non-differentiable comparison yields
    exactly the straight-through gradients described above."""
    dim = _check_args(x, group, dim)
    return reference(x, _as_param(tau, x), _as_param(vth, x), group, dim)


def lif_trace(x: Tensor, tau: Scalar, vth: Scalar, group: Optional[int] = 4,
              dim: int = 2) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`lif_reference` that also returns what happens inside the neuron.

    Returns ``(out, u, fired)``, each shaped like ``x``: the output, the
    membrane potential ``u_j = tau * o_j + x_j`` and the spikes ``u_j > Vth``
    (bool). On the unprocessed tail (after the last full group) ``u`` is the
    input, which passes through, and nothing fires. For inspection
    (tools/analysis_tools/visualize_lif.py), not for training."""
    dim = _check_args(x, group, dim)
    tau, vth = _as_param(tau, x), _as_param(vth, x)
    u = _potentials(x, tau, vth, group, dim)
    if u is None:
        return x.clone(), x.clone(), torch.zeros_like(x, dtype=torch.bool)
    fired = u > vth
    return (_with_tail(torch.where(fired, u, vth), x, dim), _with_tail(u, x, dim),
            _with_tail(fired, torch.zeros_like(x, dtype=torch.bool), dim))

