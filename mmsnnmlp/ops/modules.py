"""The layers of the fused ops: :class:`LIF`, :class:`NormAct`, and
:func:`set_impl`, which picks the implementation of every one of them inside
a model (see :mod:`.dispatch` for the choices)."""
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dispatch import check_impl
from .lif import lif, reference
from .norm_act import ACTS, autocast_dtype, norm_act

# torch.fx keeps the ops as graph leaves: they check and dispatch on their input.
torch.fx.wrap('lif')


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
        impl (str): implementation of :func:`~mmsnnmlp.ops.lif`; see
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
        self.dim, self.group, self.impl = dim, group, check_impl(impl)
        # Not learned (learn_*=False) stays a frozen parameter, so checkpoints keep the keys;
        # fixed (fix_*=True) is a plain float, as in the official code.
        self.tau = float(init_tau) if fix_tau else nn.Parameter(
            torch.tensor([float(init_tau)]), requires_grad=learn_tau)
        self.Vth = float(init_vth) if fix_vth else nn.Parameter(
            torch.tensor([float(init_vth)]), requires_grad=learn_vth)

    group: Optional[int]  # typed for TorchScript (None is a value here)

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_scripting():  # TorchScript: the reference formulation (plain ops)
            return _scripted_lif(x, self.tau, self.Vth, self.group, self.dim)
        else:
            if self.group == -1:
                return x
            return lif(x, self.tau, self.Vth, self.group, self.dim, self.impl)

    def extra_repr(self) -> str:
        axis = 'H' if self.dim == 2 else 'W'
        group = {None: 'global', -1: 'off (identity)'}.get(self.group, self.group)
        fixed = [f'{name}={value} (fixed)' for name, value in (('tau', self.tau), ('Vth', self.Vth))
                 if isinstance(value, float)]
        return ', '.join([f'along={axis}, group={group}'] + fixed + [f'impl={self.impl}'])


class NormAct(nn.GroupNorm):
    """``GroupNorm(1, num_channels)`` (+ GELU) computed by :func:`~mmsnnmlp.ops.norm_act`.

    Args:
        num_channels (int): C.
        eps (float): Default: 1e-5.
        act (str | None): None or 'gelu'. Default: None.
        autocast_output (bool): under autocast, output the autocast dtype
            instead of float32; for norms whose consumer is a convolution or
            another op that would cast anyway. Default: False.
        impl (str): implementation; see :func:`mmsnnmlp.ops.set_impl`.
            Default: 'auto'.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, act: Optional[str] = None,
                 autocast_output: bool = False, impl: str = 'auto'):
        super().__init__(1, num_channels, eps=eps)
        if act not in ACTS:
            raise ValueError(f'NormAct act must be None or "gelu", got {act!r}')
        self.act, self.autocast_output = act, autocast_output
        self.impl = check_impl(impl)

    act: Optional[str]  # typed for TorchScript

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_scripting():  # TorchScript: the reference formulation (plain ops)
            y = F.group_norm(x, 1, self.weight, self.bias, self.eps)
            return y if self.act is None else F.gelu(y)
        else:
            return _norm_act_layer(x, self.weight, self.bias, self.eps, self.act, self.impl,
                                   self.autocast_output)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, act={self.act}, impl={self.impl}'


def _norm_act_layer(x: Tensor, weight: Tensor, bias: Tensor, eps: float, act: Optional[str],
                    impl: str, autocast_output: bool) -> Tensor:
    out_dtype = autocast_dtype(x.device.type) if autocast_output else None
    return norm_act(x, weight, bias, eps, act, impl, out_dtype)


torch.fx.wrap('_norm_act_layer')


def _scripted_lif(x: Tensor, tau: Union[float, Tensor], vth: Union[float, Tensor],
                  group: Optional[int], dim: int) -> Tensor:
    """LIF's forward under TorchScript (``lif``'s checks and dispatch do not script)."""
    if group is not None and group == -1:
        return x
    ctype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if isinstance(tau, float):
        tau = torch.full([1], tau, dtype=ctype, device=x.device)
    if isinstance(vth, float):
        vth = torch.full([1], vth, dtype=ctype, device=x.device)
    return reference(x, tau, vth, group, dim)


def set_impl(model: nn.Module, impl: str) -> nn.Module:
    """Set ``impl`` on every :class:`LIF` and :class:`NormAct` inside
    ``model``; returns ``model``."""
    check_impl(impl)
    for module in model.modules():
        if isinstance(module, (LIF, NormAct)):
            module.impl = impl
    return model
