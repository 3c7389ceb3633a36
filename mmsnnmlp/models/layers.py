"""The layers of SNN-MLP and :func:`build_stages`, shared by the backbone and the classifier.

Every norm is ``GroupNorm(1, C)`` and every "linear" layer a 1x1
convolution, exactly as in the released ImageNet models, so their state dicts
load key for key. The norms (and the GELUs right after the token mixer's
first two) run as one fused op, :func:`mmsnnmlp.ops.norm_act`. Tensors are
(N, C, H, W) in either memory format: every layer keeps its input's, and the
backbone runs channels_last inside on CPU (see :class:`~mmsnnmlp.models.SNNMLP`).

In eager CPU inference the layers take shortcuts that leave every value as it
is (:func:`eager_cpu_inference`): GELUs run in place on the NHWC view of
channels_last tensors (oneDNN's kernel), and the residual adds and the sum of
the token mixer's branches write into the branch's fresh output instead of a
new tensor (on a CPU each new large tensor costs page faults). Traced (fx,
TorchScript, Dynamo, ONNX export), under autograd, or on other devices, they
run the plain modules.

Token mixers are registered by kind (:func:`register_token_mixer`); the
spec's ``token_mixer`` picks one. Each kind keeps its released state-dict
key in the block (``lif_module`` for SNN-MLP's, ``axial_shift`` for AS-MLP's)
and the released names inside it, so every layout loads without conversion.
"""
import functools
from typing import Callable, Dict, Optional, Sequence, Tuple, Type

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from ..ops import LIF, NormAct, dispatch
from ..ops.norm_act import gelu, gelu_
from .axial_ops import AxialLIF, AxialShift

__all__ = ['norm', 'drop_path', 'DropPath', 'pad_to_multiple', 'PatchEmbed', 'PatchMerging', 'Mlp',
           'lif_neuron',
           'TOKEN_MIXERS', 'register_token_mixer', 'build_token_mixer', 'TokenMixer',
           'LIFMixer', 'AxialShiftMixer', 'ChannelMixer', 'SNNMLPBlock', 'SNNMLPStage',
           'LIF_PLACEMENTS', 'build_stages']

ActLayer = Optional[Callable[[], nn.Module]]

# torch.fx.symbolic_trace in progress (the plain is_fx_tracing of torch >= 2.6 warns)
is_fx_tracing = getattr(torch.fx._symbolic_trace, 'is_fx_symbolic_tracing', None) or \
    getattr(torch.fx._symbolic_trace, 'is_fx_tracing', lambda: False)


def eager() -> bool:
    """Plain eager execution: not traced by torch.fx, Dynamo (torch.compile,
    torch.export) or an ONNX export. (TorchScript never reaches the callers'
    eager branches.) Python state only, so tracers never see the check."""
    return not (is_fx_tracing() or dispatch.is_compiling() or dispatch.onnx_exporting())


def eager_cpu_inference(t: Tensor) -> bool:
    """Whether the shortcuts apply to ``t``: a CPU tensor that autograd does
    not track, outside autocast (which would pick other dtypes than an in-place op)."""
    return (t.device.type == 'cpu' and not t.requires_grad
            and not torch.is_autocast_cpu_enabled())


def _untouched(module: nn.Module) -> bool:
    """No replaced forward (an ONNX export swaps forwards of instances) and no hooks."""
    return ('forward' not in module.__dict__ and not module._forward_hooks
            and not module._forward_pre_hooks)


def plain_gelu(module: nn.Module) -> bool:
    """An exact ``nn.GELU`` as built: only those are computed by the shortcuts."""
    return type(module) is nn.GELU and module.approximate == 'none' and _untouched(module)


def plain_conv1x1(conv: nn.Module) -> bool:
    """A dense 1x1 ``nn.Conv2d`` (stride 1, no padding) as built."""
    return (type(conv) is nn.Conv2d and conv.kernel_size == (1, 1) and conv.stride == (1, 1)
            and conv.padding == (0, 0) and conv.dilation == (1, 1) and conv.groups == 1
            and _untouched(conv))


# Positions per tile of the tiled 1x1 convolutions below: a tile of the MLP's
# hidden layer (4096 x 4C values) stays in cache between its two GEMMs.
TILE_ROWS = 4096


def _rows(x: Tensor) -> Optional[Tensor]:
    """The (N*H*W, C) matrix over the memory of an (N, C, H, W) channels_last
    tensor (a view), or None for other layouts."""
    if x.dim() != 4 or not x.is_contiguous(memory_format=torch.channels_last):
        return None
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _conv_rows(rows: Tensor, conv: nn.Conv2d, out: Tensor) -> Tensor:
    """``out = rows @ W^T + b``: the 1x1 ``conv`` on an (N*H*W, C) matrix."""
    weight = conv.weight.reshape(conv.out_channels, -1).t()
    if conv.bias is None:
        return torch.mm(rows, weight, out=out)
    return torch.addmm(conv.bias, rows, weight, out=out)


def _tiles_apply(x: Tensor, convs: Tuple[nn.Module, ...]) -> bool:
    """CPU inference on channels_last ``x`` with one thread, and no gradient
    for the convs' parameters.

    One thread only: with more, each tile's GEMMs and GELU are parallel
    regions, 3-5 per tile instead of 3 per layer, and on a machine busy with
    other work every region can wait a scheduler time slice for its threads
    (measured with 2 threads at load 6: the tiled MLP 2.7x slower than the
    plain one, 1.6x faster at load 3)."""
    grad = torch.is_grad_enabled()
    return (torch.get_num_threads() == 1 and eager_cpu_inference(x)
            and x.is_contiguous(memory_format=torch.channels_last)
            and all(p.dtype == x.dtype and not (grad and p.requires_grad)
                    for c in convs for p in c.parameters()))


def mlp_tiled(x: Tensor, fc1: nn.Conv2d, fc2: nn.Conv2d) -> Optional[Tensor]:
    """``fc2(GELU(fc1(x)))`` for 1x1 convs, tile by tile of positions, in CPU
    inference on channels_last ``x`` (else None): the hidden layer, 4x wider
    than x, never exists whole (measured 1.7x faster at SNN-MLP-T's stage 1 at
    the detection shape: no page faults for it, and it stays in cache). The
    same GEMMs and GELU, row by row; a channels_last output."""
    if not _tiles_apply(x, (fc1, fc2)):
        return None
    rows, (n, _, h, w) = _rows(x), x.shape
    out = x.new_empty(rows.shape[0], fc2.out_channels)
    hidden = x.new_empty(min(TILE_ROWS, rows.shape[0]), fc1.out_channels)
    for start in range(0, rows.shape[0], TILE_ROWS):
        stop = min(start + TILE_ROWS, rows.shape[0])
        tile = gelu_(_conv_rows(rows[start:stop], fc1, hidden[:stop - start]))
        _conv_rows(tile, fc2, out[start:stop])
    return out.view(n, h, w, -1).permute(0, 3, 1, 2)


def branches_tiled(a: Tensor, b: Tensor, conv_a: nn.Conv2d, conv_b: nn.Conv2d
                   ) -> Optional[Tensor]:
    """``GELU(conv_a(a)) + GELU(conv_b(b))`` for 1x1 convs, tile by tile, in CPU
    inference on channels_last inputs (else None): one output tensor, the
    second branch's tile summed in while in cache."""
    if not (_tiles_apply(a, (conv_a, conv_b)) and _tiles_apply(b, ()) and a.shape == b.shape):
        return None
    rows_a, rows_b, (n, _, h, w) = _rows(a), _rows(b), a.shape
    out = a.new_empty(rows_a.shape[0], conv_a.out_channels)
    scratch = a.new_empty(min(TILE_ROWS, rows_a.shape[0]), conv_b.out_channels)
    for start in range(0, rows_a.shape[0], TILE_ROWS):
        stop = min(start + TILE_ROWS, rows_a.shape[0])
        tile = gelu_(_conv_rows(rows_a[start:stop], conv_a, out[start:stop]))
        tile.add_(gelu_(_conv_rows(rows_b[start:stop], conv_b, scratch[:stop - start])))
    return out.view(n, h, w, -1).permute(0, 3, 1, 2)


def gelu_fresh(x: Tensor) -> Tensor:
    """GELU of ``x``, a tensor the caller has just made and owns: in place in
    CPU inference (see :func:`eager_cpu_inference`), else out of place, on
    the NHWC view of channels_last tensors on CPU (oneDNN's kernel)."""
    if eager_cpu_inference(x):
        return gelu_(x)
    return gelu(x) if x.device.type == 'cpu' else F.gelu(x)


def gelu_sum(a: Tensor, b: Tensor) -> Tensor:
    """``GELU(a) + GELU(b)`` of two fresh tensors the caller owns: in CPU
    inference in place into ``a`` (no new tensor; ``b`` is overwritten)."""
    if eager_cpu_inference(a) and eager_cpu_inference(b) and a.dtype == b.dtype \
            and a.stride() == b.stride():
        return gelu_(a).add_(gelu_(b))
    return gelu_fresh(a) + gelu_fresh(b)


def residual_add(x: Tensor, branch: Tensor) -> Tensor:
    """``x + branch`` where ``branch`` is a fresh tensor the caller owns: in CPU
    inference written into ``branch`` (the same values: IEEE addition commutes)."""
    if eager_cpu_inference(branch) and not x.requires_grad and x.dtype == branch.dtype \
            and x.shape == branch.shape and x.stride() == branch.stride() \
            and x.data_ptr() != branch.data_ptr():
        return branch.add_(x)
    return x + branch


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


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad an NCHW tensor at the bottom/right to H and W multiples of ``multiple``.

    A leaf of torch.fx graphs (``torch.fx.wrap`` below), since it branches on
    the input's size."""
    # ceil to the multiple, minus the size: a floor division, not a Mod, which inductor
    # cannot carry into a dynamic graph's backward (tests/models/test_compile_dynamic.py)
    pad_h = -(-x.shape[2] // multiple) * multiple - x.shape[2]
    pad_w = -(-x.shape[3] // multiple) * multiple - x.shape[3]
    if pad_h > 0 or pad_w > 0:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x


torch.fx.wrap('pad_to_multiple')


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection; pads bottom/right to the patch size."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = norm(embed_dims, keep_float32=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(pad_to_multiple(x, self.patch_size)))


class PatchMerging(nn.Module):
    """2x2 space-to-channel then 1x1 reduction; odd sizes are zero-padded."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = norm(4 * dim)
        self.reduction = nn.Conv2d(4 * dim, 2 * dim, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = pad_to_multiple(x, 2)
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
        if torch.jit.is_scripting():
            return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
        else:
            fast = plain_gelu(self.act) and eager()
            if fast and plain_conv1x1(self.fc1) and plain_conv1x1(self.fc2) and (
                    not self.drop.training or self.drop.p == 0):
                out = mlp_tiled(x, self.fc1, self.fc2)
                if out is not None:
                    return out
            x = self.fc1(x)
            x = gelu_fresh(x) if fast else self.act(x)
            return self.drop(self.fc2(self.drop(x)))


def lif_neuron(spec, dim: int) -> LIF:
    """A LIF neuron along H (``dim=2``) or W (``dim=3``) with an SNNMLPSpec's options."""
    return LIF(dim=dim, group=spec.lif_group, init_tau=spec.lif_tau, init_vth=spec.lif_vth,
               learn_tau=spec.learn_tau, learn_vth=spec.learn_vth, fix_tau=spec.lif_fix_tau,
               fix_vth=spec.lif_fix_vth)


# --------------------------------------------------------------------------
# Token mixers
# --------------------------------------------------------------------------
TOKEN_MIXERS: Dict[str, Type['TokenMixer']] = {}


def register_token_mixer(kind: str, key: str) -> Callable[[Type['TokenMixer']], Type['TokenMixer']]:
    """Class decorator: the token mixer for ``token_mixer=kind``, stored in its
    block under ``key`` (the block's attribute and state-dict key)."""
    def register(cls: Type['TokenMixer']) -> Type['TokenMixer']:
        cls.kind, cls.key = kind, key
        TOKEN_MIXERS[kind] = cls
        return cls
    return register


def build_token_mixer(spec, dim: int, act_layer: ActLayer = None) -> 'TokenMixer':
    return TOKEN_MIXERS[spec.token_mixer](spec, dim, act_layer)


class TokenMixer(nn.Module):
    """Token mixing: 1x1 conv, depthwise 3x3, then two branches, each an axial
    op, a 1x1 conv and a GELU; their sum, a norm and a 1x1 conv.

    ``norm1`` and ``norm2`` include the GELU that follows each of them. The
    axial ops of the branches are a subclass's (:meth:`build_axial_ops`,
    :meth:`axial`); register it with :func:`register_token_mixer`.

    Args:
        spec (SNNMLPSpec): ``dwconv``, and the options of the axial ops.
            Without the depthwise conv ``dw1`` and its norm, the norms are
            numbered on (``norm1``, then ``norm2`` before ``conv3``): the
            AS-MLP module's keys.
        dim (int): channels.
        act_layer (callable, optional): builds a layer that replaces every
            GELU here (Table 8's 'replace_gelu'); None keeps the GELUs.
    """
    kind: str = ''
    key: str = ''
    __jit_unused_properties__ = ['out_norm']  # TorchScript takes the norm by name

    def __init__(self, spec, dim: int, act_layer: ActLayer = None):
        super().__init__()
        gelu = None if act_layer else 'gelu'  # fused into the norm, unless a layer replaces it
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.norm1 = norm(dim, act=gelu)
        self.act1 = act_layer() if act_layer else nn.Identity()
        if spec.dwconv:
            self.dw1 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
            self.norm2 = norm(dim, act=gelu)
            self.act_dw = act_layer() if act_layer else nn.Identity()
        else:
            self.dw1 = None
        self.build_axial_ops(spec, dim)
        self.conv2_1 = nn.Conv2d(dim, dim, 1)
        self.conv2_2 = nn.Conv2d(dim, dim, 1)
        self.act2_1 = act_layer() if act_layer else nn.GELU()
        self.act2_2 = act_layer() if act_layer else nn.GELU()
        # The norms are numbered in order, as in both released layouts: the last
        # is norm3 after dw1's norm2, else norm2.
        self._out_norm_key = f'norm{3 if spec.dwconv else 2}'
        self.add_module(self._out_norm_key, norm(dim))
        self.conv3 = nn.Conv2d(dim, dim, 1)

    @property
    def out_norm(self) -> nn.Module:
        """The norm before ``conv3`` (``norm3`` or ``norm2``, see above)."""
        return self._modules[self._out_norm_key]

    def build_axial_ops(self, spec, dim: int) -> None:
        """Add the branches' axial ops (their keys come after ``dw1``'s)."""

    def axial(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """The inputs of the two branches; here both see ``x`` as it is."""
        return x, x

    def forward(self, x: Tensor) -> Tensor:
        x = self.act1(self.norm1(self.conv1(x)))  # norm + GELU (or norm, then LIF)
        if self.dw1 is not None:
            x = self.act_dw(self.norm2(self.dw1(x)))
        first, second = self.axial(x)
        if torch.jit.is_scripting():  # TorchScript cannot look modules up by name
            mixed = self.act2_1(self.conv2_1(first)) + self.act2_2(self.conv2_2(second))
            if hasattr(self, 'norm3'):  # see out_norm
                return self.conv3(self.norm3(mixed))
            return self.conv3(self.norm2(mixed))
        else:
            return self.conv3(self.out_norm(self._branches(first, second)))

    def _branches(self, first: Tensor, second: Tensor) -> Tensor:
        if not (plain_gelu(self.act2_1) and plain_gelu(self.act2_2) and eager()):
            return self.act2_1(self.conv2_1(first)) + self.act2_2(self.conv2_2(second))
        if plain_conv1x1(self.conv2_1) and plain_conv1x1(self.conv2_2):
            mixed = branches_tiled(first, second, self.conv2_1, self.conv2_2)
            if mixed is not None:
                return mixed
        # the conv outputs are ours to overwrite
        return gelu_sum(self.conv2_1(first), self.conv2_2(second))


@register_token_mixer('lif', key='lif_module')
class LIFMixer(TokenMixer):
    """SNN-MLP's: LIF along H (``lif1``) before ``conv2_1``, along W (``lif2``)
    before ``conv2_2``."""

    def build_axial_ops(self, spec, dim: int) -> None:
        self.lif1 = lif_neuron(spec, 2)
        self.lif2 = lif_neuron(spec, 3)

    def axial(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        return self.lif1(x), self.lif2(x)


@register_token_mixer('axial_shift', key='axial_shift')
class AxialShiftMixer(TokenMixer):
    """AS-MLP's: shift along W before ``conv2_1``, along H before ``conv2_2``
    (AS-MLP's order, so its weights keep their meaning)."""

    def build_axial_ops(self, spec, dim: int) -> None:
        self.shift_w = AxialShift(spec.shift_size, dim=3, dilation=spec.shift_dilation)
        self.shift_h = AxialShift(spec.shift_size, dim=2, dilation=spec.shift_dilation)

    def axial(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        return self.shift_w(x), self.shift_h(x)


@register_token_mixer('none', key='token_mixer')
class ChannelMixer(TokenMixer):
    """No axial op: the branches mix channels only (spatial mixing is left to ``dw1``)."""


# --------------------------------------------------------------------------
# Blocks and stages
# --------------------------------------------------------------------------
class SNNMLPBlock(nn.Module):
    """Pre-norm residual block: token mixing, then the channel MLP.

    The token mixer sits under its kind's key (``lif_module`` for SNN-MLP's;
    see :func:`register_token_mixer`) and is reached as :attr:`mixer`."""

    def __init__(self, spec, dim: int, drop_path_prob: float = 0.0, with_cp: bool = False,
                 act_layer: ActLayer = None):
        super().__init__()
        self.with_cp = with_cp
        self.norm1 = norm(dim)
        mixer = build_token_mixer(spec, dim, act_layer)
        self._mixer_key = mixer.key
        self.add_module(mixer.key, mixer)
        self.drop_path = DropPath(drop_path_prob)
        self.norm2 = norm(dim)
        self.mlp = Mlp(dim, int(dim * spec.mlp_ratio), spec.drop_rate,
                       act=act_layer() if act_layer else None)

    __jit_unused_properties__ = ['mixer']  # TorchScript finds the mixer by key

    @property
    def mixer(self) -> TokenMixer:
        return self._modules[self._mixer_key]

    def _forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            x = x + self.drop_path(self._mix(self.norm1(x)))
            return x + self.drop_path(self.mlp(self.norm2(x)))
        else:
            if not eager():
                x = x + self.drop_path(self._mix(self.norm1(x)))
                return x + self.drop_path(self.mlp(self.norm2(x)))
            # the branches end in new tensors (conv3, fc2; drop path copies or passes them)
            x = residual_add(x, self.drop_path(self._mix(self.norm1(x))))
            return residual_add(x, self.drop_path(self.mlp(self.norm2(x))))

    def _mix(self, x: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            # TorchScript cannot look modules up by name: run the child under the mixer's key
            out = x
            for name, child in self.named_children():
                if name == self._mixer_key:
                    out = child(x)
            return out
        else:
            return self.mixer(x)

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            return self._forward(x)  # no activation checkpointing in TorchScript
        else:
            if self.with_cp and x.requires_grad:
                return cp.checkpoint(self._forward, x, use_reentrant=False)
            return self._forward(x)


class SNNMLPStage(nn.Module):
    """Blocks at one resolution, optionally a LIF layer (``lif``, Table 8's
    'after_stage'), then (except the last stage) patch merging."""

    def __init__(self, spec, dim: int, drop_path_probs: Sequence[float], downsample: bool,
                 with_cp: bool = False, act_layer: ActLayer = None,
                 lif_after: Optional[nn.Module] = None):
        super().__init__()
        self.blocks = nn.ModuleList(
            SNNMLPBlock(spec, dim, p, with_cp, act_layer) for p in drop_path_probs)
        self.lif = lif_after
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Returns (features at this stage, input of the next stage)."""
        for block in self.blocks:
            x = block(x)
        if self.lif is not None:
            x = self.lif(x)
        return x, (self.downsample(x) if self.downsample is not None else x)


# Where LIF layers go besides the token mixer's (see SNNMLPSpec.lif_placement).
LIF_PLACEMENTS = (None, 'after_stage', 'replace_gelu')


def build_stages(spec, with_cp: bool = False) -> nn.ModuleList:
    """The stages of SNN-MLP (released key names ``<i>.blocks.<j>``, ``<i>.downsample``)
    from an :class:`~mmsnnmlp.models.variants.SNNMLPSpec`.

    Stage i has ``embed_dims * 2**i`` channels and, except the last, ends with
    patch merging; stochastic depth rises linearly over all blocks to
    ``drop_path_rate``. ``with_cp``: activation checkpointing per block."""
    depths = spec.depths
    total = sum(depths)
    probs = [spec.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
    lif_layer = functools.partial(AxialLIF, functools.partial(lif_neuron, spec))
    act_layer = lif_layer if spec.lif_placement == 'replace_gelu' else None
    stages = nn.ModuleList()
    for i, depth in enumerate(depths):
        start = sum(depths[:i])
        stages.append(SNNMLPStage(
            spec, spec.embed_dims * 2**i, probs[start:start + depth],
            downsample=i < len(depths) - 1, with_cp=with_cp, act_layer=act_layer,
            lif_after=lif_layer() if spec.lif_placement == 'after_stage' else None))
    return stages
