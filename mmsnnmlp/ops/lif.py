"""Full-precision LIF (leaky integrate-and-fire) token mixing along H or W.

Semantics (spec section 2): the chosen axis is cut into groups of ``group``
consecutive positions starting at 0; only the full groups are processed, the
tail passes through. Within a group, per position along the other axes::

    o_0 = 0
    u_j = tau * o_j + x_j
    f_j = u_j > Vth
    out_j = u_j if f_j else Vth
    o_{j+1} = 0 if f_j else u_j

Gradients treat the spike ``f`` as a constant. ``group=None`` makes one group of
the whole axis (the paper's "global LIF").

Two implementations live here:

* :func:`lif` -- the fast path used by the model: a custom autograd function
  that stores only its input and recomputes the cheap recurrence in backward
  (reduced precision is computed in float32);
* :func:`lif_reference` -- the same math written as plain differentiable
  PyTorch ops, kept as the oracle for every fast path.
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn

Scalar = Union[float, Tensor]


def _check_args(x: Tensor, group: Optional[int], dim: int) -> int:
    if x.dim() != 4:
        raise ValueError(f'lif expects an NCHW tensor, got shape {tuple(x.shape)}')
    if dim not in (2, 3, -2, -1):
        raise ValueError(f'lif runs along H (dim=2) or W (dim=3), got dim={dim}')
    if group is not None and (isinstance(group, bool) or not isinstance(group, int) or group < 1):
        raise ValueError(f'lif group must be an int >= 1 or None (global), got {group!r}')
    return dim % 4


def _as_param(value: Scalar, like: Tensor) -> Tensor:
    if not isinstance(value, Tensor):
        value = torch.tensor([float(value)], dtype=_compute_dtype(like))
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


def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _forward_scan(xv, outv, tau, vth, size, step):
    """The recurrence with cheap ops into preallocated buffers (several times
    faster on CPU than ``where``): for finite values ``max(u, Vth)`` equals
    ``where(u > Vth, u, Vth)`` and ``u * (u <= Vth)`` the reset potential."""
    u = torch.empty_like(xv.select(step, 0))
    potential, keep = torch.empty_like(u), torch.empty_like(u)
    for j in range(size):
        if j == 0:
            u.copy_(xv.select(step, 0))
        else:
            torch.mul(potential, tau, out=u).add_(xv.select(step, j))  # tau * o + x
        torch.maximum(u, vth, out=outv.select(step, j))
        if j < size - 1:
            torch.le(u, vth, out=keep)
            potential, u = u.mul_(keep), potential


def _forward_scan_where(xv, outv, tau, vth, size, step):
    """The same recurrence with ``where``: exact for NaN and Inf too."""
    potential = None
    for j in range(size):
        u = xv.select(step, j)
        if potential is not None:
            u = tau * potential + u
        fired = u > vth
        outv.select(step, j).copy_(torch.where(fired, u, vth))
        potential = u.masked_fill(fired, 0.0)


class _LIFFunction(torch.autograd.Function):
    """Stores only x; backward recomputes the spikes (a few cheap passes)."""

    @staticmethod
    def forward(ctx, x, tau, vth, group, dim):
        ctype = _compute_dtype(x)
        xc = x.to(ctype)
        tau_c, vth_c = tau.to(ctype).reshape(()), vth.to(ctype).reshape(())
        out = xc.clone()  # the tail passes through unchanged
        xv, size = _split_groups(xc, dim, group)
        if xv is not None:
            outv, _ = _split_groups(out, dim, group)
            _forward_scan(xv, outv, tau_c, vth_c, size, dim + 1)
            if not torch.isfinite(out.sum()):
                _forward_scan_where(xv, outv, tau_c, vth_c, size, dim + 1)
        ctx.save_for_backward(x, tau, vth)
        ctx.group, ctx.dim = group, dim
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        x, tau, vth = ctx.saved_tensors
        group, dim = ctx.group, ctx.dim
        ctype = _compute_dtype(x)
        xc, g = x.to(ctype), grad_out.to(ctype)
        tau_c, vth_c = tau.to(ctype), vth.to(ctype)
        grad_x = g.clone()  # the tail copies its gradient
        grad_tau = torch.zeros((), dtype=ctype, device=x.device)
        grad_vth = torch.zeros((), dtype=ctype, device=x.device)
        xv, size = _split_groups(xc, dim, group)
        if xv is not None:
            gv, _ = _split_groups(g, dim, group)
            gxv, _ = _split_groups(grad_x, dim, group)
            step = dim + 1
            # Recompute the forward recurrence: spikes and carried potentials.
            fired, carried = [], [None]
            for j in range(size):
                u = xv.select(step, j)
                if carried[-1] is not None:
                    u = u + tau_c * carried[-1]
                f = u > vth_c
                fired.append(f)
                carried.append(u.masked_fill(f, 0.0))
            need_tau, need_vth = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
            adj = None  # dL/du_{j+1}
            for j in reversed(range(size)):
                gj, f = gv.select(step, j), fired[j]
                adj = gj.masked_fill(~f, 0.0) if adj is None else torch.where(f, gj, tau_c * adj)
                gxv.select(step, j).copy_(adj)
                if need_tau and carried[j] is not None:
                    grad_tau = grad_tau + (adj * carried[j]).sum()
                if need_vth:
                    grad_vth = grad_vth + gj.masked_fill(f, 0.0).sum()
        grad_tau = grad_tau.reshape(tau.shape).to(tau.dtype) if ctx.needs_input_grad[1] else None
        grad_vth = grad_vth.reshape(vth.shape).to(vth.dtype) if ctx.needs_input_grad[2] else None
        return grad_x.to(x.dtype), grad_tau, grad_vth, None, None


def lif(x: Tensor, tau: Scalar, vth: Scalar, group: Optional[int] = 4, dim: int = 2) -> Tensor:
    """LIF along H (``dim=2``) or W (``dim=3``) of an NCHW tensor.

    Args:
        x (Tensor): input of shape (N, C, H, W), any float dtype.
        tau (float | Tensor): leak factor, one value (learnable if a tensor).
        vth (float | Tensor): firing threshold, one value.
        group (int | None): positions per group; None for one group over the
            whole axis. Default: 4.
        dim (int): 2 for H, 3 for W. Default: 2.
    """
    dim = _check_args(x, group, dim)
    tau, vth = _as_param(tau, x), _as_param(vth, x)
    from . import lif_triton  # local import: Triton is optional
    if lif_triton.usable(x):
        return lif_triton.lif(x, tau, vth, group, dim)
    return _LIFFunction.apply(x, tau, vth, group, dim)


def lif_reference(x: Tensor, tau: Scalar, vth: Scalar, group: Optional[int] = 4,
                  dim: int = 2) -> Tensor:
    """Unfused oracle: the recurrence as differentiable PyTorch ops.

    Autograd through ``where`` with a non-differentiable comparison yields
    exactly the spec's straight-through gradients."""
    dim = _check_args(x, group, dim)
    tau, vth = _as_param(tau, x), _as_param(vth, x)
    xv, size = _split_groups(x, dim, group)
    if xv is None:
        return x.clone()
    step, outs, potential = dim + 1, [], None
    for j in range(size):
        u = xv.select(step, j)
        if potential is not None:
            u = tau * potential + u
        fired = u > vth
        outs.append(torch.where(fired, u, vth))
        potential = torch.where(fired, torch.zeros_like(u), u)
    processed = torch.stack(outs, step).flatten(dim, dim + 1)
    tail = x.narrow(dim, processed.shape[dim], x.shape[dim] - processed.shape[dim])
    return torch.cat([processed, tail], dim)


class LIF(nn.Module):
    """LIF neuron layer with scalar ``tau`` and ``Vth`` parameters.

    Args:
        dim (int): 2 to run along H, 3 along W.
        group (int | None): LIF group size; None for global. Default: 4.
        init_tau (float): initial leak factor. Default: 0.25.
        init_vth (float): initial threshold. Default: 0.25 (the paper's best).
        learn_tau (bool): whether tau is trained. Default: True.
        learn_vth (bool): whether Vth is trained. Default: True.
    """

    def __init__(self, dim: int, group: Optional[int] = 4, init_tau: float = 0.25,
                 init_vth: float = 0.25, learn_tau: bool = True, learn_vth: bool = True):
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f'LIF dim must be 2 (H) or 3 (W), got {dim}')
        if group is not None and (not isinstance(group, int) or group < 1):
            raise ValueError(f'LIF group must be an int >= 1 or None (global), got {group!r}')
        self.dim, self.group = dim, group
        # Fixed values stay parameters (frozen) so checkpoints keep the same keys.
        self.tau = nn.Parameter(torch.tensor([float(init_tau)]), requires_grad=learn_tau)
        self.Vth = nn.Parameter(torch.tensor([float(init_vth)]), requires_grad=learn_vth)

    def forward(self, x: Tensor) -> Tensor:
        return lif(x, self.tau, self.Vth, self.group, self.dim)

    def extra_repr(self) -> str:
        axis = 'H' if self.dim == 2 else 'W'
        return f'along={axis}, group={self.group if self.group else "global"}'


class use_reference_lif:
    """Context manager: inside it, :class:`LIF` modules run the unfused
    oracle :func:`lif_reference` instead of the fast :func:`lif` (for
    benchmarks and debugging)::

        with use_reference_lif():
            feats = model(images)

    It swaps this module's ``lif`` global, which ``LIF.forward`` looks up on
    every call; so it is process-wide (not thread-local) while active.
    Nesting is fine: each exit restores what its entry replaced.
    """

    def __enter__(self) -> 'use_reference_lif':
        global lif
        self._saved, lif = lif, lif_reference
        return self

    def __exit__(self, *exc_info) -> None:
        global lif
        lif = self._saved
