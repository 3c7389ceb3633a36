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

:func:`lif` is the op the model uses (``impl``: see :mod:`.dispatch`): a
library op ``mmsnnmlp::lif`` that saves only its input and recomputes the
cheap recurrence in backward, in float32 for reduced precision. The PyTorch
path below runs on any device; :mod:`.lif_triton` holds the CUDA kernels.
:func:`lif_reference` is the same math as plain differentiable PyTorch ops,
the oracle for every fast path (``impl='reference'``).
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn

from . import dispatch

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


def compute_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64; everything else computes in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


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


def _torch_forward(x: Tensor, tau: Tensor, vth: Tensor, group: Optional[int],
                   dim: int) -> Tensor:
    """The recurrence with out= ops into preallocated buffers (no temporaries
    per step). ``fmax(u, Vth)`` is ``where(u > Vth, u, Vth)`` for every input,
    NaN included (fmax ignores a NaN), so no special case is needed."""
    ctype = compute_dtype(x)
    xc = x.to(ctype)
    out = torch.empty_like(xc).copy_(xc)  # the tail passes through unchanged
    xv, size = _split_groups(xc, dim, group)
    if xv is None:
        return out.to(x.dtype)
    outv, _ = _split_groups(out, dim, group)
    tau_c, vth_c = tau.to(ctype).reshape(()), vth.to(ctype).reshape(())
    zero = torch.zeros((), dtype=ctype, device=x.device)
    step = dim + 1
    u = torch.empty_like(xv.select(step, 0))
    potential = torch.empty_like(u)
    fired = torch.empty(u.shape, dtype=torch.bool, device=x.device)
    for j in range(size):
        if j == 0:
            u.copy_(xv.select(step, 0))
        else:
            torch.mul(potential, tau_c, out=u).add_(xv.select(step, j))  # tau * o + x
        torch.fmax(u, vth_c, out=outv.select(step, j))
        if j < size - 1:
            torch.gt(u, vth_c, out=fired)
            torch.where(fired, zero, u, out=potential)  # reset after a spike
    return out.to(x.dtype)


def _torch_backward(grad: Tensor, x: Tensor, tau: Tensor, vth: Tensor, group: Optional[int],
                    dim: int) -> Tuple[Tensor, Tensor, Tensor]:
    ctype = compute_dtype(x)
    xc = x.to(ctype)
    tau_c, vth_c = tau.to(ctype).reshape(()), vth.to(ctype).reshape(())
    g = grad.to(ctype)
    grad_x = torch.empty_like(xc).copy_(g)  # the tail copies its gradient
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
        adj = None  # dL/du_{j+1}
        for j in reversed(range(size)):
            gj, f = gv.select(step, j), fired[j]
            adj = gj.masked_fill(~f, 0.0) if adj is None else torch.where(f, gj, tau_c * adj)
            gxv.select(step, j).copy_(adj)
            if carried[j] is not None:
                grad_tau = grad_tau + (adj * carried[j]).sum()
            grad_vth = grad_vth + gj.masked_fill(f, 0.0).sum()
    return (grad_x.to(x.dtype), grad_tau.reshape(tau.shape).to(tau.dtype),
            grad_vth.reshape(vth.shape).to(vth.dtype))


# --------------------------------------------------------------------------
# The library op: mmsnnmlp::lif and its backward
# --------------------------------------------------------------------------


def _lif_forward(x: Tensor, tau: Tensor, vth: Tensor, group: Optional[int], dim: int,
                 impl: str) -> Tensor:
    from . import lif_triton
    return dispatch.run('lif', impl, x,
                        lambda: dispatch.like(x, lif_triton.forward(x, tau, vth, group, dim)),
                        lambda: _torch_forward(x, tau, vth, group, dim))


def _lif_forward_fake(x, tau, vth, group, dim, impl):
    return torch.empty_like(x)


def _lif_backward(grad: Tensor, x: Tensor, tau: Tensor, vth: Tensor, group: Optional[int],
                  dim: int, impl: str) -> Tuple[Tensor, Tensor, Tensor]:
    from . import lif_triton
    grad_x, grad_tau, grad_vth = dispatch.run(
        'lif', impl, x, lambda: lif_triton.backward(grad, x, tau, vth, group, dim),
        lambda: _torch_backward(grad, x, tau, vth, group, dim))
    return dispatch.like(x, grad_x), grad_tau, grad_vth


def _lif_backward_fake(grad, x, tau, vth, group, dim, impl):
    return torch.empty_like(x), tau.new_empty(tau.shape), vth.new_empty(vth.shape)


_lif_backward_op = dispatch.define_op('lif_backward', _lif_backward, _lif_backward_fake)


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


_lif_op = dispatch.define_op('lif', _lif_forward, _lif_forward_fake, _backward, _setup_context)


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
    return _lif_op(x, _as_param(tau, x), _as_param(vth, x), group, dim, impl)


def _recurrence(xv: Tensor, tau: Tensor, vth: Tensor, step: int):
    """The LIF recurrence over axis ``step`` of a grouped view (see
    :func:`_split_groups`), as differentiable PyTorch ops: yields
    ``(u_j, fired_j, out_j)`` for j = 0 .. group - 1."""
    potential = None
    for j in range(xv.shape[step]):
        u = xv.select(step, j)
        if potential is not None:
            u = tau * potential + u
        fired = u > vth
        yield u, fired, torch.where(fired, u, vth)
        potential = torch.where(fired, torch.zeros_like(u), u)


def _ungroup(steps, tail: Tensor, dim: int) -> Tensor:
    """Per-step tensors stacked back into the layout of ``tail``, which fills
    the positions after the last full group."""
    processed = torch.stack(steps, dim + 1).flatten(dim, dim + 1)
    rest = tail.narrow(dim, processed.shape[dim], tail.shape[dim] - processed.shape[dim])
    return torch.cat([processed, rest], dim)


def lif_reference(x: Tensor, tau: Scalar, vth: Scalar, group: Optional[int] = 4,
                  dim: int = 2) -> Tensor:
    """Unfused oracle: the recurrence as differentiable PyTorch ops.

    Autograd through ``where`` with a non-differentiable comparison yields
    exactly the spec's straight-through gradients."""
    dim = _check_args(x, group, dim)
    tau, vth = _as_param(tau, x), _as_param(vth, x)
    xv, _ = _split_groups(x, dim, group)
    if xv is None:
        # Nothing is processed. tau and Vth still get (zero) gradients, as from
        # the fused ops, so an optimiser treats them alike whichever path ran:
        # an empty sum is +0.0, and x - 0.0 keeps every value, -0.0 included.
        return x - (tau[:0].sum() + vth[:0].sum()).to(x.dtype)
    return _ungroup([out for _, _, out in _recurrence(xv, tau, vth, dim + 1)], x, dim)


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
    xv, _ = _split_groups(x, dim, group)
    if xv is None:
        return x.clone(), x.clone(), torch.zeros_like(x, dtype=torch.bool)
    u, fired, out = zip(*_recurrence(xv, tau, vth, dim + 1))
    return (_ungroup(out, x, dim), _ungroup(u, x, dim),
            _ungroup(fired, torch.zeros_like(x, dtype=torch.bool), dim))


class LIF(nn.Module):
    """LIF neuron layer with scalar ``tau`` and ``Vth`` parameters.

    Args:
        dim (int): 2 to run along H, 3 along W.
        group (int | None): LIF group size; None for global; -1 for no LIF
            (the identity, the official code's ``lif=-1``: tau and Vth are
            still made, as there, so its checkpoints load). Default: 4.
        init_tau (float): initial leak factor. Default: 0.25.
        init_vth (float): initial threshold. Default: 0.25 (the paper's best).
        learn_tau (bool): whether tau is trained. Default: True.
        learn_vth (bool): whether Vth is trained. Default: True.
        fix_tau (bool): tau is the plain float ``init_tau``, not a parameter
            (the official ``--lif_fix_tau``): it is absent from the state
            dict, and ``learn_tau`` does not apply. Default: False.
        fix_vth (bool): the same for Vth (``--lif_fix_vth``). Default: False.
        impl (str): implementation of :func:`lif`; see
            :func:`mmsnnmlp.ops.set_impl`. Default: 'auto'.
    """

    def __init__(self, dim: int, group: Optional[int] = 4, init_tau: float = 0.25,
                 init_vth: float = 0.25, learn_tau: bool = True, learn_vth: bool = True,
                 fix_tau: bool = False, fix_vth: bool = False, impl: str = 'auto'):
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f'LIF dim must be 2 (H) or 3 (W), got {dim}')
        if group is not None and group != -1 and (not isinstance(group, int) or group < 1):
            raise ValueError(f'LIF group must be an int >= 1, None (global) or -1 (no LIF), '
                             f'got {group!r}')
        self.dim, self.group, self.impl = dim, group, dispatch.check_impl(impl)
        # Not learned (learn_*=False) stays a frozen parameter, so checkpoints keep the keys;
        # fixed (fix_*=True) is a plain float, as in the official code.
        self.tau = float(init_tau) if fix_tau else nn.Parameter(
            torch.tensor([float(init_tau)]), requires_grad=learn_tau)
        self.Vth = float(init_vth) if fix_vth else nn.Parameter(
            torch.tensor([float(init_vth)]), requires_grad=learn_vth)

    def forward(self, x: Tensor) -> Tensor:
        if self.group == -1:
            return x
        return lif(x, self.tau, self.Vth, self.group, self.dim, self.impl)

    def extra_repr(self) -> str:
        axis = 'H' if self.dim == 2 else 'W'
        group = {None: 'global', -1: 'off (identity)'}.get(self.group, self.group)
        fixed = [f'{name}={value} (fixed)' for name, value in (('tau', self.tau), ('Vth', self.Vth))
                 if isinstance(value, float)]
        return ', '.join([f'along={axis}, group={group}'] + fixed + [f'impl={self.impl}'])
