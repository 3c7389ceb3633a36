"""SNN-MLP backbone (Li et al., CVPR 2022) for dense prediction.

Everything runs on NCHW tensors: every norm is ``GroupNorm(1, C)`` and every
"linear" layer a 1x1 convolution, exactly as in the released ImageNet models,
so their state dicts load key for key. The norms (and the GELUs right after
the LIF module's first two) run as one fused op, :func:`mmsnnmlp.ops.norm_act`;
``impl`` picks the implementation of every fused op. This file imports neither mmdet nor
mmseg; :mod:`mmsnnmlp.registration` hooks it into their registries.
"""
import functools
import math
import warnings
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..ops import LIF, NormAct, set_impl
from .axial_ops import AxialLIF, AxialShift
from .checkpoint import load_backbone_weights

ARCH_SETTINGS: Dict[str, Dict] = {
    'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2)),
    'small': dict(embed_dims=96, depths=(2, 2, 18, 2)),
    'base': dict(embed_dims=128, depths=(2, 2, 18, 2)),
}
ARCH_ALIASES = {'t': 'tiny', 's': 'small', 'b': 'base'}


def norm(channels: int, act: Optional[str] = None, keep_float32: bool = False) -> NormAct:
    """The one normalisation SNN-MLP uses: LayerNorm over (C, H, W), as
    ``GroupNorm(1, C)``, optionally fused with the GELU after it.

    Under autocast, a norm whose output feeds a convolution (or LIF) returns
    the autocast dtype, which the convolution would cast to anyway; the
    norms that start the residual stream or produce the backbone's outputs
    keep float32 (``keep_float32``), as ``F.group_norm`` does."""
    return NormAct(channels, eps=1e-5, act=act, autocast_output=not keep_float32)


def drop_path(x: Tensor, prob: float, training: bool) -> Tensor:
    """Stochastic depth: drop the whole residual branch per sample."""
    if prob == 0.0 or not training:
        return x
    keep = 1.0 - prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):

    def __init__(self, prob: float = 0.0):
        super().__init__()
        self.prob = prob

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.prob, self.training)

    def extra_repr(self) -> str:
        return f'prob={self.prob}'


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection; pads bottom/right to the patch size."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = norm(embed_dims, keep_float32=True)

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch_size
        pad_h, pad_w = (-x.shape[2]) % p, (-x.shape[3]) % p
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.norm(self.proj(x))


class PatchMerging(nn.Module):
    """2x2 space-to-channel then 1x1 reduction; odd sizes are zero-padded."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = norm(4 * dim)
        self.reduction = nn.Conv2d(4 * dim, 2 * dim, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[2] % 2 or x.shape[3] % 2:
            x = F.pad(x, (0, x.shape[3] % 2, 0, x.shape[2] % 2))
        # Channel order of the released models: (0,0), (1,0), (0,1), (1,1).
        x = torch.cat([x[..., 0::2, 0::2], x[..., 1::2, 0::2],
                       x[..., 0::2, 1::2], x[..., 1::2, 1::2]], 1)
        return self.reduction(self.norm(x))


class Mlp(nn.Module):
    """Channel MLP of 1x1 convolutions; ``act`` replaces its GELU."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0, act: Optional[nn.Module] = None):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU() if act is None else act
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


TOKEN_MIXERS = ('lif', 'axial_shift', 'none')
LIF_PLACEMENTS = (None, 'after_stage', 'replace_gelu')
# The block's attribute (state-dict key) for each token mixer: the released SNN-MLP's,
# AS-MLP's, and a neutral one for the mixer without an axial op.
MIXER_KEYS = {'lif': 'lif_module', 'axial_shift': 'axial_shift', 'none': 'token_mixer'}


class TokenMixer(nn.Module):
    """Token mixing: 1x1 conv, depthwise 3x3, then two branches, each an axial
    op, a 1x1 conv and a GELU; their sum, a norm and a 1x1 conv.

    ``norm1`` and ``norm2`` include the GELU that follows each of them.

    Args:
        dim (int): channels.
        axial_op (str): the op of the branches. 'lif' (SNN-MLP): LIF along H
            (``lif1``) before ``conv2_1``, along W (``lif2``) before
            ``conv2_2``. 'axial_shift' (AS-MLP): shift along W before
            ``conv2_1``, along H before ``conv2_2`` (AS-MLP's order, so its
            weights keep their meaning). 'none': both branches see the input
            as it is.
        dwconv (bool): with the depthwise conv ``dw1`` and its norm. Without,
            the norms are numbered on (``norm1``, then ``norm2`` before
            ``conv3``): the AS-MLP module's keys.
        lif_group (int | None): LIF group size (-1: LIF off, tau/Vth kept).
        shift_size, shift_dilation (int): of the axial shift.
        lif_act (callable, optional): builds a LIF layer that replaces every
            GELU here (Table 8's 'replace_gelu'); None keeps the GELUs.
        **lif_kwargs: tau/Vth options of every LIF neuron.
    """

    def __init__(self, dim: int, axial_op: str = 'lif', dwconv: bool = True,
                 lif_group: Optional[int] = 4, shift_size: int = 5, shift_dilation: int = 1,
                 lif_act: Optional[Callable[[], nn.Module]] = None, **lif_kwargs):
        super().__init__()
        gelu = None if lif_act else 'gelu'  # fused into the norm, unless a LIF replaces it
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.norm1 = norm(dim, act=gelu)
        self.act1 = lif_act() if lif_act else nn.Identity()
        if dwconv:
            self.dw1 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
            self.norm2 = norm(dim, act=gelu)
            self.act_dw = lif_act() if lif_act else nn.Identity()
        else:
            self.dw1 = None
        if axial_op == 'lif':
            self.lif1 = LIF(dim=2, group=lif_group, **lif_kwargs)
            self.lif2 = LIF(dim=3, group=lif_group, **lif_kwargs)
            self.branch_ops = ('lif1', 'lif2')
        elif axial_op == 'axial_shift':
            self.shift_w = AxialShift(shift_size, dim=3, dilation=shift_dilation)
            self.shift_h = AxialShift(shift_size, dim=2, dilation=shift_dilation)
            self.branch_ops = ('shift_w', 'shift_h')
        else:
            self.branch_ops = ()
        self.conv2_1 = nn.Conv2d(dim, dim, 1)
        self.conv2_2 = nn.Conv2d(dim, dim, 1)
        self.act2_1 = lif_act() if lif_act else nn.GELU()
        self.act2_2 = lif_act() if lif_act else nn.GELU()
        # the last norm: norm3 after dw1's norm2, else norm2 (both released layouts)
        self.add_module('norm3' if dwconv else 'norm2', norm(dim))
        self.conv3 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act1(self.norm1(self.conv1(x)))  # norm + GELU (or norm, then LIF)
        if self.dw1 is not None:
            x = self.act_dw(self.norm2(self.dw1(x)))
            last_norm = self.norm3
        else:
            last_norm = self.norm2
        if self.branch_ops:
            first, second = (getattr(self, op)(x) for op in self.branch_ops)
        else:  # no axial op: the branches mix channels only
            first = second = x
        first = self.act2_1(self.conv2_1(first))
        second = self.act2_2(self.conv2_2(second))
        return self.conv3(last_norm(first + second))


class SNNMLPBlock(nn.Module):
    """Pre-norm residual block: token mixing, then the channel MLP.

    The token mixer sits under the key :data:`MIXER_KEYS` names for
    ``token_mixer`` (``lif_module`` for SNN-MLP's)."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop: float = 0.0,
                 drop_path_prob: float = 0.0, lif_group: Optional[int] = 4,
                 with_cp: bool = False, token_mixer: str = 'lif', dwconv: bool = True,
                 shift_size: int = 5, shift_dilation: int = 1,
                 lif_act: Optional[Callable[[], nn.Module]] = None, **lif_kwargs):
        super().__init__()
        self.with_cp = with_cp
        self.norm1 = norm(dim)
        self.mixer_key = MIXER_KEYS[token_mixer]
        self.add_module(self.mixer_key, TokenMixer(
            dim, token_mixer, dwconv, lif_group, shift_size, shift_dilation, lif_act,
            **lif_kwargs))
        self.drop_path = DropPath(drop_path_prob)
        self.norm2 = norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop, act=lif_act() if lif_act else None)

    def _forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(getattr(self, self.mixer_key)(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def forward(self, x: Tensor) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


class SNNMLPStage(nn.Module):
    """Blocks at one resolution, optionally a LIF layer (``lif``, Table 8's
    'after_stage'), then (except the last stage) patch merging."""

    def __init__(self, dim: int, depth: int, drop_path_probs: Sequence[float],
                 downsample: bool, lif_after: Optional[nn.Module] = None, **block_kwargs):
        super().__init__()
        self.blocks = nn.ModuleList(
            SNNMLPBlock(dim, drop_path_prob=p, **block_kwargs) for p in drop_path_probs)
        assert len(self.blocks) == depth
        self.lif = lif_after
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Returns (features at this stage, input of the next stage)."""
        for block in self.blocks:
            x = block(x)
        if self.lif is not None:
            x = self.lif(x)
        return x, (self.downsample(x) if self.downsample is not None else x)


def _check_variant(token_mixer: str, dwconv: bool, lif_placement: Optional[str],
                  lif_group: Optional[int], shift_size: int, shift_dilation: int,
                  lif_fix_tau: bool, lif_fix_vth: bool) -> None:
    """Clear errors for the architecture options of :func:`build_stages`."""
    if token_mixer not in TOKEN_MIXERS:
        raise ValueError(f'token_mixer must be one of {TOKEN_MIXERS}, got {token_mixer!r}')
    if lif_placement not in LIF_PLACEMENTS:
        raise ValueError(f'lif_placement must be one of {LIF_PLACEMENTS}, got {lif_placement!r}')
    if lif_group is not None and (isinstance(lif_group, bool) or not isinstance(lif_group, int)
                                  or (lif_group < 1 and lif_group != -1)):
        raise ValueError(f'lif_group must be an int >= 1, None (global LIF) or -1 (no LIF), '
                         f'got {lif_group!r}')
    for name, value in (('dwconv', dwconv), ('lif_fix_tau', lif_fix_tau),
                        ('lif_fix_vth', lif_fix_vth)):
        if not isinstance(value, bool):
            raise ValueError(f'{name} must be True or False, got {value!r}')
    if isinstance(shift_size, bool) or not isinstance(shift_size, int) or shift_size < 1 \
            or shift_size % 2 == 0:
        raise ValueError(f'shift_size must be an odd int >= 1 (AS-MLP: 5), got {shift_size!r}')
    if isinstance(shift_dilation, bool) or not isinstance(shift_dilation, int) \
            or shift_dilation < 1:
        raise ValueError(f'shift_dilation must be an int >= 1 (AS-MLP: 1), got {shift_dilation!r}')


def build_stages(embed_dims: int, depths: Sequence[int], drop_path_rate: float,
                 mlp_ratio: float = 4.0, drop: float = 0.0, with_cp: bool = False,
                 token_mixer: str = 'lif', dwconv: bool = True,
                 lif_placement: Optional[str] = None, lif_group: Optional[int] = 4,
                 shift_size: int = 5, shift_dilation: int = 1, **lif_kwargs) -> nn.ModuleList:
    """The stages of SNN-MLP (released key names ``<i>.blocks.<j>``, ``<i>.downsample``).

    Stage i has ``embed_dims * 2**i`` channels and, except the last, ends with
    patch merging; stochastic depth rises linearly over all blocks to
    ``drop_path_rate``. Shared by the detection backbone and the timm classifier,
    whose docstrings describe the options (:class:`SNNMLP`); ``lif_kwargs`` go
    to every LIF neuron (``init_tau``, ``init_vth``, ``learn_tau``,
    ``learn_vth``, ``fix_tau``, ``fix_vth``)."""
    _check_variant(token_mixer, dwconv, lif_placement, lif_group, shift_size, shift_dilation,
                  lif_kwargs.get('fix_tau', False), lif_kwargs.get('fix_vth', False))
    total = sum(depths)
    probs = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
    lif_layer = functools.partial(AxialLIF, lif_group, **lif_kwargs)
    stages = nn.ModuleList()
    for i, depth in enumerate(depths):
        start = sum(depths[:i])
        stages.append(SNNMLPStage(
            embed_dims * 2**i, depth, probs[start:start + depth],
            downsample=i < len(depths) - 1,
            lif_after=lif_layer() if lif_placement == 'after_stage' else None,
            lif_act=lif_layer if lif_placement == 'replace_gelu' else None,
            mlp_ratio=mlp_ratio, drop=drop, with_cp=with_cp, token_mixer=token_mixer,
            dwconv=dwconv, lif_group=lif_group, shift_size=shift_size,
            shift_dilation=shift_dilation, **lif_kwargs))
    return stages


def resolve_arch(arch: Union[str, Dict]) -> Tuple[int, Tuple[int, ...]]:
    """``arch`` name (or alias) or dict -> (embed_dims, depths)."""
    if isinstance(arch, str):
        name = ARCH_ALIASES.get(arch.lower(), arch.lower())
        if name not in ARCH_SETTINGS:
            valid = sorted(ARCH_SETTINGS) + sorted(ARCH_ALIASES)
            raise ValueError(f'Unknown SNNMLP arch {arch!r}; valid: {valid} or a dict '
                             'with "embed_dims" and "depths"')
        arch = ARCH_SETTINGS[name]
    if not isinstance(arch, dict) or not {'embed_dims', 'depths'} <= set(arch):
        raise ValueError(f'SNNMLP arch dict needs "embed_dims" and "depths", got {arch!r}')
    embed_dims, depths = int(arch['embed_dims']), tuple(int(d) for d in arch['depths'])
    if embed_dims < 1 or len(depths) == 0 or min(depths) < 1:
        raise ValueError(f'SNNMLP arch needs embed_dims >= 1 and depths >= 1, got {arch!r}')
    return embed_dims, depths


def _check_out_indices(out_indices, num_stages: int) -> Tuple[int, ...]:
    """Sorted stage indices (negative ones counted from the end), each once."""
    if isinstance(out_indices, int):
        out_indices = (out_indices,)
    out_indices = tuple(out_indices)
    bad = [i for i in out_indices if isinstance(i, bool) or not isinstance(i, int)
           or not -num_stages <= i < num_stages]
    if not out_indices or bad:
        raise ValueError(f'out_indices must be stage indices in [0, {num_stages - 1}], '
                         f'got {out_indices!r}')
    resolved = [i % num_stages for i in out_indices]
    if len(set(resolved)) != len(resolved):
        raise ValueError(f'out_indices names a stage twice: {out_indices!r} (necks expect one '
                         'feature map per stage)')
    return tuple(sorted(resolved))


def _check_lif_values(tau, vth) -> None:
    """Finite tau and Vth; a warning for an initial tau outside [0, 1] (a leak
    factor: above 1 the potential grows, below 0 it flips sign)."""
    for name, value in (('lif_tau', tau), ('lif_vth', vth)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ValueError(f'{name} must be a finite number, got {value!r}')
    if not 0.0 <= tau <= 1.0:
        warnings.warn(f'lif_tau={tau} is outside [0, 1]: the LIF leak factor is meant to '
                      'decay the membrane potential (the paper uses 0.25)')


class SNNMLP(BaseModule):
    """SNN-MLP backbone: `Brain-inspired Multilayer Perceptron with Spiking
    Neurons <https://arxiv.org/abs/2203.14679>`_.

    Args:
        arch (str | dict): 'tiny', 'small', 'base' (or 't', 's', 'b'), or a
            dict with ``embed_dims`` and ``depths``. Default: 'tiny'.
        in_channels (int): input image channels. Default: 3.
        patch_size (int): patch embedding stride. Default: 4.
        mlp_ratio (float): channel MLP expansion. Default: 4.
        drop_rate (float): dropout in the channel MLPs. Default: 0.
        drop_path_rate (float): stochastic depth, increasing linearly over
            the blocks to this value. Default: 0.2.
        lif_group (int | None): LIF group size; None for global LIF (Table 7's
            "global"); -1 for no LIF, the official code's ``lif=-1``: every
            LIF neuron is the identity but keeps its tau/Vth, so checkpoints
            trained that way load. Default: 4.
        lif_tau (float): initial tau of every LIF neuron. Default: 0.25.
        lif_vth (float): initial Vth of every LIF neuron. Default: 0.25.
        learn_tau (bool): train tau. Default: True.
        learn_vth (bool): train Vth. Default: True.
        lif_fix_tau (bool): tau is the plain float ``lif_tau`` (Table 6's
            fixed values; the official ``--lif_fix_tau``): no parameter and
            no state-dict key, so checkpoints trained that way, which lack
            the ``.tau`` keys, load (and checkpoints with them do not).
            ``learn_tau=False`` instead keeps a frozen parameter and its
            key. Default: False.
        lif_fix_vth (bool): the same for Vth (``--lif_fix_vth``). Default: False.
        token_mixer (str): the op of the token mixer's two branches (paper
            Table 5). 'lif': LIF along H and along W (the paper's model);
            'axial_shift': AS-MLP's axial shift along W and along H, with
            ``shift_size`` and ``shift_dilation``; 'none': no op (the
            branches mix channels only; spatial mixing is left to ``dwconv``).
            The mixer's state-dict key: ``lif_module``, ``axial_shift`` (as
            in AS-MLP) or ``token_mixer``. Default: 'lif'.
        dwconv (bool): the depthwise 3x3 conv (+ norm + GELU) before the
            branches (Table 5). Without it the mixer has AS-MLP's layout and
            keys (its final norm is ``norm2``), so
            ``token_mixer='axial_shift', dwconv=False`` is AS-MLP's block.
            Default: True.
        shift_size (int): axial shift channel groups, odd (AS-MLP: 5).
            Default: 5.
        shift_dilation (int): axial shift step in positions (AS-MLP: 1).
            Default: 1.
        lif_placement (str | None): LIF neurons outside the token mixer
            (Table 8, whose other two rows keep the axial shift as the
            mixer, i.e. ``token_mixer='axial_shift'``): 'after_stage' adds a
            LIF layer (``layers.<i>.lif``) to the output of every stage,
            before its patch merging (the stage's features include it);
            'replace_gelu' replaces every GELU of every block (the token
            mixer's four and the channel MLP's one) by a LIF layer. A LIF
            layer there is LIF along H and along W of its input, averaged
            (:class:`~mmsnnmlp.models.axial_ops.AxialLIF`). None: only the
            token mixer's LIF ('lif'), the paper's model ("LIF replacing the
            axial shift"). Default: None.
        out_indices (Sequence[int]): stages whose features are returned,
            each through its own GroupNorm. Default: (0, 1, 2, 3).
        frozen_stages (int): -1 freezes nothing, 0 the patch embedding, k > 0
            also stages 0..k-1 (with their output norms). Default: -1.
        norm_eval (bool): accepted for compatibility with mmdet/mmseg
            backbone configs, and has no effect: every norm here is a
            GroupNorm, which has no running statistics to freeze (and
            computes the same in train and eval mode). Default: False.
        with_cp (bool): activation checkpointing per block to save memory.
            Default: False.
        impl (str): implementation of the fused LIF and norm ops: 'auto'
            (Triton on CUDA, PyTorch elsewhere), 'torch', 'triton' or
            'reference' (the unfused PyTorch computation of the official
            model); see :func:`mmsnnmlp.ops.set_impl`, which also switches a
            built model. Default: 'auto'.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            loads a released ImageNet checkpoint, a converted backbone file
            or a full detector/segmentor checkpoint. Default: None.
    """

    def __init__(self,
                 arch: Union[str, Dict] = 'tiny',
                 in_channels: int = 3,
                 patch_size: int = 4,
                 mlp_ratio: float = 4.0,
                 drop_rate: float = 0.0,
                 drop_path_rate: float = 0.2,
                 lif_group: Optional[int] = 4,
                 lif_tau: float = 0.25,
                 lif_vth: float = 0.25,
                 learn_tau: bool = True,
                 learn_vth: bool = True,
                 lif_fix_tau: bool = False,
                 lif_fix_vth: bool = False,
                 token_mixer: str = 'lif',
                 dwconv: bool = True,
                 shift_size: int = 5,
                 shift_dilation: int = 1,
                 lif_placement: Optional[str] = None,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 impl: str = 'auto',
                 init_cfg: Optional[Dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.arch = arch
        self.embed_dims, self.depths = resolve_arch(arch)
        num_stages = len(self.depths)
        self.out_indices = _check_out_indices(out_indices, num_stages)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {num_stages}], got {frozen_stages!r}')
        if not 0.0 <= drop_path_rate < 1.0 or not 0.0 <= drop_rate < 1.0:
            raise ValueError('drop_rate and drop_path_rate must be in [0, 1), got '
                             f'{drop_rate} and {drop_path_rate}')
        if init_cfg is not None and init_cfg.get('type') == 'Pretrained' \
                and not init_cfg.get('checkpoint'):
            raise ValueError('init_cfg of type Pretrained needs a "checkpoint" path or URL')
        for name, value in (('in_channels', in_channels), ('patch_size', patch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) \
                or not math.isfinite(mlp_ratio) or int(self.embed_dims * mlp_ratio) < 1:
            raise ValueError(f'mlp_ratio must be a positive number (at least one hidden '
                             f'channel), got {mlp_ratio!r}')
        _check_lif_values(lif_tau, lif_vth)
        self.in_channels = in_channels
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        self.patch_embed = PatchEmbed(in_channels, self.embed_dims, patch_size)
        self.pos_drop = nn.Dropout(drop_rate)
        self.num_features = [self.embed_dims * 2**i for i in range(num_stages)]
        self.layers = build_stages(
            self.embed_dims, self.depths, drop_path_rate, mlp_ratio=mlp_ratio, drop=drop_rate,
            with_cp=with_cp, token_mixer=token_mixer, dwconv=dwconv, lif_placement=lif_placement,
            shift_size=shift_size, shift_dilation=shift_dilation, lif_group=lif_group,
            init_tau=lif_tau, init_vth=lif_vth, fix_tau=lif_fix_tau, fix_vth=lif_fix_vth,
            learn_tau=learn_tau, learn_vth=learn_vth)
        self.out_norms = nn.ModuleDict(
            {str(i): norm(self.num_features[i], keep_float32=True) for i in self.out_indices})
        set_impl(self, impl)
        self._freeze_stages()

    def init_weights(self) -> None:
        if self.init_cfg is not None and self.init_cfg.get('type') == 'Pretrained':
            load_backbone_weights(self, self.init_cfg['checkpoint'],
                                  logger=MMLogger.get_current_instance())
            self._freeze_stages()
            return
        if self.init_cfg is None:
            for m in self.modules():
                if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.GroupNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
        super().init_weights()

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed]
        for i in range(self.frozen_stages):
            frozen.append(self.layers[i])
            if str(i) in self.out_norms:
                frozen.append(self.out_norms[str(i)])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'SNNMLP':
        super().train(mode)
        self._freeze_stages()  # frozen stages stay in eval mode (no dropout, drop path)
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'SNNMLP expects input of shape (N, {self.in_channels}, H, W), '
                             f'got {tuple(x.shape)}')
        x = self.pos_drop(self.patch_embed(x))
        outs = []
        for i, stage in enumerate(self.layers):
            feat, x = stage(x)
            if i in self.out_indices:
                outs.append(self.out_norms[str(i)](feat))
            if i >= self.out_indices[-1]:
                break
        return tuple(outs)


def snnmlp_tiny(**kwargs) -> SNNMLP:
    """SNN-MLP-T: C=96, depths 2-2-6-2 (28.3M params with the ImageNet head)."""
    return SNNMLP(arch='tiny', **kwargs)


def snnmlp_small(**kwargs) -> SNNMLP:
    """SNN-MLP-S: C=96, depths 2-2-18-2 (49.7M params with the ImageNet head)."""
    return SNNMLP(arch='small', **kwargs)


def snnmlp_base(**kwargs) -> SNNMLP:
    """SNN-MLP-B: C=128, depths 2-2-18-2 (87.9M params with the ImageNet head)."""
    return SNNMLP(arch='base', **kwargs)
