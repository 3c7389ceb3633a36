"""The SNN-MLP variants: one table of names and one validated architecture spec.

:data:`VARIANTS` is the only place the variant names live: the backbone's
``arch`` (``'tiny'``, or the alias ``'t'``), the timm models
(``snnmlp_tiny``, with their ImageNet drop path and released weights), and
the short names of the benchmark and config files (``snnmlp-t``) all come
from it.

:class:`SNNMLPSpec` holds every architecture and ablation option of the
network, under the names that :class:`~mmsnnmlp.models.SNNMLP` and the timm
classifier take, and checks them once. :func:`~mmsnnmlp.models.layers.build_stages`
builds the stages from it.
"""
import dataclasses
import math
import warnings
from typing import Dict, Mapping, Optional, Tuple, Union

from .layers import LIF_PLACEMENTS, TOKEN_MIXERS

__all__ = ['Variant', 'VARIANTS', 'ARCH_ALIASES', 'TIMM_VARIANTS', 'SHORT_NAMES', 'resolve_arch',
           'find_variant', 'SNNMLPSpec']


@dataclasses.dataclass(frozen=True)
class Variant:
    """One released SNN-MLP.

    Attributes:
        name: the backbone's ``arch`` ('tiny').
        alias: its one-letter alias ('t').
        embed_dims: channels of stage 0 (stage i has ``embed_dims * 2**i``).
        depths: blocks per stage.
        drop_path_rate: stochastic depth of its ImageNet training (the timm model's default).
        release_file: the released ImageNet checkpoint's file name.
        reported_top1: ImageNet-1k val top-1 (%) of the released checkpoint (its file name).
        paper_top1: ImageNet-1k val top-1 (%) in the paper's Table 1.
    """
    name: str
    alias: str
    embed_dims: int
    depths: Tuple[int, ...]
    drop_path_rate: float
    release_file: str
    reported_top1: float
    paper_top1: float

    @property
    def timm_name(self) -> str:
        """The name timm registers the classifier under ('snnmlp_tiny')."""
        return f'snnmlp_{self.name}'

    @property
    def short_name(self) -> str:
        """The name in config files and benchmark tables ('snnmlp-t')."""
        return f'snnmlp-{self.alias}'


VARIANTS: Dict[str, Variant] = {v.name: v for v in (
    Variant('tiny', 't', 96, (2, 2, 6, 2), 0.2, 'snnmlp_tiny_81.88.pt', 81.88, 81.9),
    Variant('small', 's', 96, (2, 2, 18, 2), 0.3, 'snnmlp_small_83.30.pt', 83.30, 83.3),
    Variant('base', 'b', 128, (2, 2, 18, 2), 0.5, 'snnmlp_base_83.59.pt', 83.59, 83.5),
)}
ARCH_ALIASES = {v.alias: v.name for v in VARIANTS.values()}
TIMM_VARIANTS = {v.timm_name: v for v in VARIANTS.values()}
SHORT_NAMES = {v.short_name: v.name for v in VARIANTS.values()}


def resolve_arch(arch: Union[str, Mapping]) -> Tuple[int, Tuple[int, ...]]:
    """``arch`` name (or alias, any case) or dict -> (embed_dims, depths)."""
    if isinstance(arch, str):
        name = ARCH_ALIASES.get(arch.lower(), arch.lower())
        if name not in VARIANTS:
            valid = sorted(VARIANTS) + sorted(ARCH_ALIASES)
            raise ValueError(f'Unknown SNNMLP arch {arch!r}; valid: {valid} or a dict '
                             'with "embed_dims" and "depths"')
        arch = dict(embed_dims=VARIANTS[name].embed_dims, depths=VARIANTS[name].depths)
    if not isinstance(arch, Mapping) or not {'embed_dims', 'depths'} <= set(arch):
        raise ValueError(f'SNNMLP arch dict needs "embed_dims" and "depths", got {arch!r}')
    embed_dims, depths = int(arch['embed_dims']), tuple(int(d) for d in arch['depths'])
    if embed_dims < 1 or len(depths) == 0 or min(depths) < 1:
        raise ValueError(f'SNNMLP arch needs embed_dims >= 1 and depths >= 1, got {arch!r}')
    return embed_dims, depths


def find_variant(embed_dims: int, depths) -> Optional[Variant]:
    """The released variant of this shape, or None."""
    depths = tuple(depths)
    return next((v for v in VARIANTS.values()
                 if (v.embed_dims, v.depths) == (embed_dims, depths)), None)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class SNNMLPSpec:
    """Every architecture option of SNN-MLP, checked once on construction.

    The defaults are the paper's SNN-MLP-T. The backbone and the timm
    classifier take these options under the same names (the classifier's
    ``embed_dim``, ``in_chans`` and ``proj_drop_rate`` are timm's names for
    ``embed_dims``, ``in_channels`` and ``drop_rate``).

    Attributes:
        embed_dims (int): channels of stage 0; stage i has ``embed_dims * 2**i``.
        depths (tuple[int]): blocks per stage.
        in_channels (int): input image channels.
        patch_size (int): patch embedding stride.
        mlp_ratio (float): channel MLP expansion.
        drop_rate (float): dropout in the channel MLPs.
        drop_path_rate (float): stochastic depth, rising linearly over the
            blocks (0 for the first) to this value.
        lif_group (int | None): LIF group size; None for global LIF (Table 7's
            "global"); -1 for no LIF, the official code's ``lif=-1``: every
            LIF neuron is the identity but keeps its tau/Vth, so checkpoints
            trained that way load.
        lif_tau, lif_vth (float): initial tau / Vth of every LIF neuron.
        learn_tau, learn_vth (bool): train tau / Vth (False keeps a frozen
            parameter and its state-dict key).
        lif_fix_tau, lif_fix_vth (bool): tau / Vth is the plain float
            ``lif_tau`` / ``lif_vth`` (Table 6's fixed values; the official
            ``--lif_fix_tau``/``--lif_fix_vth``): no parameter and no
            state-dict key, so checkpoints trained that way, which lack the
            keys, load (and checkpoints with them do not).
        token_mixer (str): the op of the token mixer's two branches (Table 5).
            'lif': LIF along H and along W (the paper's model); 'axial_shift':
            AS-MLP's axial shift along W and along H, with ``shift_size`` and
            ``shift_dilation``; 'none': no op (the branches mix channels only;
            spatial mixing is left to ``dwconv``). The mixer's state-dict key
            is ``lif_module``, ``axial_shift`` (as in AS-MLP) or ``token_mixer``.
        dwconv (bool): the depthwise 3x3 conv (+ norm + GELU) before the
            branches (Table 5). Without it the mixer has AS-MLP's layout and
            keys (its final norm is ``norm2``), so ``token_mixer='axial_shift',
            dwconv=False`` is AS-MLP's block.
        shift_size (int): axial shift channel groups, odd (AS-MLP: 5).
        shift_dilation (int): axial shift step in positions (AS-MLP: 1).
        lif_placement (str | None): LIF neurons outside the token mixer
            (Table 8, whose other two rows keep the axial shift as the mixer,
            i.e. ``token_mixer='axial_shift'``): 'after_stage' adds a LIF
            layer (``layers.<i>.lif``) to the output of every stage, before
            its patch merging (the stage's features include it);
            'replace_gelu' replaces every GELU of every block (the token
            mixer's four and the channel MLP's one) by a LIF layer. A LIF
            layer there is LIF along H and along W of its input, averaged
            (:class:`~mmsnnmlp.models.axial_ops.AxialLIF`). None: only the
            token mixer's LIF ('lif'), the paper's model.
    """
    embed_dims: int = VARIANTS['tiny'].embed_dims
    depths: Tuple[int, ...] = VARIANTS['tiny'].depths
    in_channels: int = 3
    patch_size: int = 4
    mlp_ratio: float = 4.0
    drop_rate: float = 0.0
    drop_path_rate: float = 0.2
    lif_group: Optional[int] = 4
    lif_tau: float = 0.25
    lif_vth: float = 0.25
    learn_tau: bool = True
    learn_vth: bool = True
    lif_fix_tau: bool = False
    lif_fix_vth: bool = False
    token_mixer: str = 'lif'
    dwconv: bool = True
    shift_size: int = 5
    shift_dilation: int = 1
    lif_placement: Optional[str] = None

    @classmethod
    def from_arch(cls, arch: Union[str, Mapping] = 'tiny', **options) -> 'SNNMLPSpec':
        """The spec of ``arch`` (a variant name or alias, or a dict with
        ``embed_dims`` and ``depths``) with the other options."""
        embed_dims, depths = resolve_arch(arch)
        return cls(embed_dims=embed_dims, depths=depths, **options)

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    @property
    def num_features(self) -> Tuple[int, ...]:
        """Channels of each stage."""
        return tuple(self.embed_dims * 2**i for i in range(self.num_stages))

    def __post_init__(self):
        # a frozen dataclass: normalise through object.__setattr__
        embed_dims, depths = resolve_arch(dict(embed_dims=self.embed_dims, depths=self.depths))
        object.__setattr__(self, 'embed_dims', embed_dims)
        object.__setattr__(self, 'depths', depths)
        self._check()

    def _check(self) -> None:
        """Clear errors for bad values, in the order the options are documented."""
        for name in ('in_channels', 'patch_size'):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        ratio = self.mlp_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) \
                or not math.isfinite(ratio) or int(self.embed_dims * ratio) < 1:
            raise ValueError(f'mlp_ratio must be a positive number (at least one hidden '
                             f'channel), got {ratio!r}')
        if not 0.0 <= self.drop_path_rate < 1.0 or not 0.0 <= self.drop_rate < 1.0:
            raise ValueError('drop_rate and drop_path_rate must be in [0, 1), got '
                             f'{self.drop_rate} and {self.drop_path_rate}')
        for name in ('lif_tau', 'lif_vth'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ValueError(f'{name} must be a finite number, got {value!r}')
        if not 0.0 <= self.lif_tau <= 1.0:  # a leak factor: above 1 u grows, below 0 it flips
            warnings.warn(f'lif_tau={self.lif_tau} is outside [0, 1]: the LIF leak factor is '
                          'meant to decay the membrane potential (the paper uses 0.25)')
        if self.token_mixer not in TOKEN_MIXERS:
            raise ValueError(f'token_mixer must be one of {tuple(TOKEN_MIXERS)}, '
                             f'got {self.token_mixer!r}')
        if self.lif_placement not in LIF_PLACEMENTS:
            raise ValueError(f'lif_placement must be one of {LIF_PLACEMENTS}, '
                             f'got {self.lif_placement!r}')
        group = self.lif_group
        if group is not None and (not _is_int(group) or (group < 1 and group != -1)):
            raise ValueError(f'lif_group must be an int >= 1, None (global LIF) or -1 (no LIF), '
                             f'got {group!r}')
        for name in ('dwconv', 'lif_fix_tau', 'lif_fix_vth'):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f'{name} must be True or False, got {getattr(self, name)!r}')
        if not _is_int(self.shift_size) or self.shift_size < 1 or self.shift_size % 2 == 0:
            raise ValueError(f'shift_size must be an odd int >= 1 (AS-MLP: 5), '
                             f'got {self.shift_size!r}')
        if not _is_int(self.shift_dilation) or self.shift_dilation < 1:
            raise ValueError(f'shift_dilation must be an int >= 1 (AS-MLP: 1), '
                             f'got {self.shift_dilation!r}')
