"""SNN-MLP ImageNet classifiers for timm: ``snnmlp_tiny``, ``snnmlp_small``, ``snnmlp_base``.

The classifier is the released network (stages, final ``GroupNorm``, global
average pooling, linear ``head``) built by :mod:`mmsnnmlp.models.layers`
from an :class:`~mmsnnmlp.models.variants.SNNMLPSpec`, as the backbone is,
with the released key names, so the ImageNet checkpoints load key for key::

    import mmsnnmlp                 # with timm imported, imports this module: registered
    model = timm.create_model('snnmlp_tiny', pretrained=True)
    model = timm.create_model('snnmlp_tiny', pretrained=True,
                              pretrained_cfg_overlay=dict(file='snnmlp_tiny_81.88.pt'))
    feats = timm.create_model('snnmlp_tiny', features_only=True)(images)  # 4 stages

Weights, from a URL or a local file, in either release layout (a bare state
dict, or the training script's dict with the state dict under ``model`` and a
pickled yacs config beside it), go through
:func:`mmsnnmlp.checkpoint.safe_load`: ``pretrained_cfg`` sets timm's
``custom_load``, so timm hands the file to :meth:`SNNMLPClassifier.load_pretrained`
instead of unpickling it itself.

The entry points here carry the names timm registers them under (the
variants' ``timm_name`` in :data:`~mmsnnmlp.models.variants.VARIANTS`);
``mmsnnmlp.models`` does not import this module, which needs timm.
"""
import contextlib
import dataclasses
import logging
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import trunc_normal_
from timm.models import (adapt_input_conv, build_model_with_cfg, generate_default_cfgs,
                         is_model, model_entrypoint, register_model, register_notrace_module)
from torch import Tensor, nn

from ..checkpoint import CheckpointError, check_fit, checkpoint_filter_fn, describe_arch, safe_load
from ..ops import LIF, NormAct
from .layers import PatchEmbed, build_stages, norm
from .variants import TIMM_VARIANTS, SNNMLPSpec, find_variant

__all__ = ['SNNMLPClassifier', 'checkpoint_filter_fn', 'load_released_weights',
           'register_timm_models', 'create_from_checkpoint', 'classifier_arch', 'classifier_config',
           'REPORTED_TOP1', 'PAPER_TOP1', 'TIMM_MODEL_NAMES']

_logger = logging.getLogger(__name__)

RELEASE_URL = 'https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/snnmlp/'
# ImageNet-1k val top-1 (%): the released checkpoints' (in their file names), the paper's Table 1.
REPORTED_TOP1 = {name: v.reported_top1 for name, v in TIMM_VARIANTS.items()}
PAPER_TOP1 = {name: v.paper_top1 for name, v in TIMM_VARIANTS.items()}
TIMM_MODEL_NAMES = tuple(TIMM_VARIANTS)
GLOBAL_POOLS = ('avg', '')


class SNNMLPClassifier(nn.Module):
    """SNN-MLP image classifier (Li et al., CVPR 2022) with timm's model API.

    Args:
        in_chans (int): input image channels. Default: 3.
        num_classes (int): classes of the linear head; 0 for none. Default: 1000.
        global_pool (str): 'avg', or '' for no pooling (then the head, if any,
            gives per-location logits, N x classes x H x W). Default: 'avg'.
        embed_dim (int): channels of stage 0 (stage i has ``embed_dim * 2**i``);
            SNNMLPSpec's ``embed_dims``. Default: 96.
        depths (Sequence[int]): blocks per stage. Default: (2, 2, 6, 2).
        drop_rate (float): dropout before the head. Default: 0.
        proj_drop_rate (float): dropout in the channel MLPs (SNNMLPSpec's
            ``drop_rate``). Default: 0.
        device, dtype: where and in which dtype the parameters are made, as
            timm's models take them (``device='meta'`` allocates nothing).
        **spec_options: the other architecture and ablation options, each a
            field of :class:`~mmsnnmlp.models.variants.SNNMLPSpec` under the
            same name, as :class:`mmsnnmlp.models.SNNMLP` takes them:
            ``patch_size``, ``mlp_ratio``, ``drop_path_rate`` (default 0.2;
            the timm models set their variant's), ``lif_group``, ``lif_tau``,
            ``lif_vth`` (checkpoint values override these two),
            ``learn_tau``, ``learn_vth``, ``lif_fix_tau``, ``lif_fix_vth``,
            ``token_mixer``, ``dwconv``, ``shift_size``, ``shift_dilation``,
            ``lif_placement``. The defaults are the paper's model.

    Attributes:
        spec (SNNMLPSpec): the architecture, checked.
    """

    def __init__(self,
                 in_chans: int = 3,
                 num_classes: int = 1000,
                 global_pool: str = 'avg',
                 embed_dim: int = 96,
                 depths: Sequence[int] = (2, 2, 6, 2),
                 drop_rate: float = 0.0,
                 proj_drop_rate: float = 0.0,
                 device: Optional[Union[str, torch.device]] = None,
                 dtype: Optional[torch.dtype] = None,
                 **spec_options):
        super().__init__()
        with torch.device(device) if device is not None else contextlib.nullcontext():
            self._build(in_chans, num_classes, global_pool, embed_dim, depths, drop_rate,
                        proj_drop_rate, spec_options)
        if dtype is not None:
            self.to(dtype=dtype)

    def _build(self, in_chans, num_classes, global_pool, embed_dim, depths, drop_rate,
               proj_drop_rate, spec_options) -> None:
        self.spec = spec = SNNMLPSpec(embed_dims=embed_dim, depths=depths, in_channels=in_chans,
                                      drop_rate=proj_drop_rate, **spec_options)
        _check_global_pool(global_pool)
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.embed_dim, self.depths = spec.embed_dims, spec.depths
        self.num_features = self.head_hidden_size = spec.num_features[-1]
        self.grad_checkpointing = False

        self.patch_embed = PatchEmbed(in_chans, spec.embed_dims, spec.patch_size)
        self.layers = build_stages(spec)
        self.norm = norm(self.num_features)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = self._new_head(num_classes)
        # A stage's feature is its last block's output, before its patch merging.
        self.feature_info = [
            dict(num_chs=spec.num_features[i], reduction=spec.patch_size * 2**i,
                 module=f'layers.{i}.blocks.{depth - 1}')
            for i, depth in enumerate(spec.depths)]
        self.apply(_init_weights)

    @classmethod
    def from_spec(cls, spec: SNNMLPSpec, **kwargs) -> 'SNNMLPClassifier':
        """The classifier of ``spec``; ``kwargs``: ``num_classes``, ``global_pool``,
        ``drop_rate`` (before the head)."""
        options = dataclasses.asdict(spec)
        return cls(embed_dim=options.pop('embed_dims'), depths=options.pop('depths'),
                   in_chans=options.pop('in_channels'), proj_drop_rate=options.pop('drop_rate'),
                   **options, **kwargs)

    def _new_head(self, num_classes: int) -> nn.Module:
        if num_classes < 0:
            raise ValueError(f'num_classes must be >= 0, got {num_classes}')
        if num_classes == 0:
            return nn.Identity()
        # where the model's parameters are, in their dtype (also after .to())
        like = next(self.layers.parameters(), None)
        head = nn.Linear(self.num_features, num_classes,
                         device=None if like is None else like.device,
                         dtype=None if like is None else like.dtype)
        _init_weights(head)
        return head.train(self.training)

    # timm's model API ------------------------------------------------------

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        if global_pool is not None:
            _check_global_pool(global_pool)
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.head = self._new_head(num_classes)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable
        for stage in self.layers:
            for block in stage.blocks:
                block.with_cp = enable

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        """Parameter groups in forward order (timm's layer-wise LR decay)."""
        if coarse:
            return dict(stem=r'^patch_embed', blocks=[(r'^layers\.(\d+)', None),
                                                      (r'^norm', (99999,))])
        # patch merging closes stage i, after its blocks
        return dict(stem=r'^patch_embed',
                    blocks=[(r'^layers\.(\d+)\.blocks\.(\d+)', None),
                            (r'^layers\.(\d+)\.downsample', (99998,)),
                            (r'^norm', (99999,))])

    def forward_features(self, x: Tensor) -> Tensor:
        """Last stage's features after the final norm, N x C x H/32 x W/32."""
        x = self.patch_embed(_check_input(x, self.in_chans))
        feat = x
        for stage in self.layers:
            feat, x = stage(x)
        return self.norm(feat)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if self.global_pool == 'avg':
            x = x.mean((2, 3))
        x = self.head_drop(x)
        if pre_logits:
            return x
        if not self.global_pool:  # no pooling: classify every location
            return self.head(x.movedim(1, -1)).movedim(-1, 1)
        return self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
            self,
            x: Tensor,
            indices: Optional[Union[int, Sequence[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[Tensor], Tuple[Tensor, List[Tensor]]]:
        """Stage features (before patch merging), as timm's feature API wants.

        Args:
            indices: the last n stages if an int, these stages if a sequence
                (negative counts from the end), all if None.
            norm: put the last stage's feature through the final norm.
            stop_early: skip the stages after the last one asked for.
            intermediates_only: return only the list of features.
        """
        if output_fmt != 'NCHW':
            raise ValueError(f'SNN-MLP features are NCHW, got output_fmt={output_fmt!r}')
        x = _check_input(x, self.in_chans)
        take, last_taken = _stage_indices(len(self.layers), indices)
        last = len(self.layers) - 1
        stages = self.layers[:last_taken + 1] if stop_early else self.layers
        intermediates = []
        x = self.patch_embed(x)
        for i, stage in enumerate(stages):
            feat, x = stage(x)
            if i in take:
                intermediates.append(self.norm(feat) if norm and i == last else feat)
        if intermediates_only:
            return intermediates
        return (self.norm(feat) if i == last else feat), intermediates

    def prune_intermediate_layers(self, indices: Union[int, Sequence[int]] = 1,
                                  prune_norm: bool = False, prune_head: bool = True) -> List[int]:
        """Drop what the features at ``indices`` do not need; returns the indices kept."""
        take, last_taken = _stage_indices(len(self.layers), indices)
        cut = last_taken < len(self.layers) - 1
        self.layers = self.layers[:last_taken + 1]
        if cut:
            self.layers[-1].downsample = None  # its output would feed a removed stage
            self.num_features = self.head_hidden_size = self.feature_info[last_taken]['num_chs']
        if prune_norm or cut:
            self.norm = nn.Identity()  # sized for the last stage only
        if prune_head or cut:
            self.reset_classifier(0, '')
        return take

    # weights --------------------------------------------------------------

    def load_pretrained(self, checkpoint_path: str) -> None:
        """timm's hook for ``custom_load`` weights: a released file read by ``safe_load``."""
        load_released_weights(self, safe_load(checkpoint_path), source=str(checkpoint_path))


def _check_input(x: Tensor, in_chans: int) -> Tensor:
    """``x``, if it is an (N, in_chans, H, W) tensor; TorchScript-able, and a
    leaf of torch.fx graphs (``torch.fx.wrap`` below), so traced and scripted
    models check their input too."""
    if x.dim() != 4 or x.shape[1] != in_chans:
        if torch.jit.is_scripting():
            raise ValueError('SNN-MLP classifier expects input of shape (N, in_chans, H, W)')
        else:
            raise ValueError(f'SNN-MLP classifier expects input of shape '
                             f'(N, {in_chans}, H, W), got {tuple(x.shape)}')
    return x


torch.fx.wrap('_check_input')

# Our fused ops branch on their input's size and dtype: timm's fx feature
# extraction keeps them as leaf modules, as it does for its own such layers.
register_notrace_module(LIF)
register_notrace_module(NormAct)


def _check_global_pool(global_pool: str) -> None:
    if global_pool not in GLOBAL_POOLS:
        raise ValueError(f'global_pool must be one of {GLOBAL_POOLS}, got {global_pool!r}')


def _stage_indices(num_stages: int, indices) -> Tuple[List[int], int]:
    """timm's index convention: None = all, int n = the last n, else explicit (negatives ok)."""
    if indices is None:
        indices = num_stages
    if isinstance(indices, int):
        if not 0 < indices <= num_stages:
            raise ValueError(f'last-n stage count must be in [1, {num_stages}], got {indices}')
        take = list(range(num_stages - indices, num_stages))
    else:
        take = []
        for i in indices:
            if not -num_stages <= i < num_stages:
                raise ValueError(f'stage index {i} out of range for {num_stages} stages')
            take.append(i % num_stages)
        if not take:
            raise ValueError('no stage indices given')
    return take, max(take)


def _init_weights(module: nn.Module) -> None:
    # the released training recipe: truncated normal for 1x1 convs and the head, zero biases
    if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d)
                                         and module.kernel_size == (1, 1)):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def load_released_weights(model: SNNMLPClassifier, checkpoint: Mapping[str, Any],
                          source: str = 'checkpoint') -> None:
    """Load a released checkpoint (already read safely) into ``model``, all or nothing.

    As timm does for pretrained weights, a head of another class count is left
    freshly initialised and the first conv is adapted to ``model.in_chans``;
    any other missing, unexpected or mis-shaped key raises
    :class:`~mmsnnmlp.models.CheckpointError` before a weight changes."""
    state = checkpoint_filter_fn(checkpoint, model)
    own = model.state_dict()
    head_keys = [k for k in ('head.weight', 'head.bias') if k in state]
    new_head = bool(head_keys) and any(k not in own or own[k].shape != state[k].shape
                                       for k in head_keys)
    if new_head:
        rows = state[head_keys[0]].shape[0]
        _logger.info(f'{source}: classifier of {rows} classes not loaded (model has '
                     f'{model.num_classes})')
        for key in head_keys:
            del state[key]
    proj = state.get('patch_embed.proj.weight')
    if proj is not None and proj.dim() == 4 and proj.shape[1] != model.in_chans:
        state['patch_embed.proj.weight'] = adapt_input_conv(model.in_chans, proj,
                                                            base_chans=proj.shape[1])
    check_fit(own, state, source, 'SNN-MLP classifier',
              may_miss=lambda key: new_head and key.startswith('head.'))
    model.load_state_dict(state, strict=False)


def classifier_arch(state_dict: Mapping[str, Tensor]) -> Dict[str, Any]:
    """``embed_dim``, ``depths`` and ``num_classes`` read off a classifier state dict."""
    if 'head.weight' not in state_dict or 'patch_embed.proj.weight' not in state_dict:
        raise CheckpointError('Not an SNN-MLP classifier checkpoint: it has no '
                              '"patch_embed.proj.weight" or no "head.weight" (a backbone or '
                              'detector checkpoint cannot be scored as a classifier)')
    arch = describe_arch(state_dict)
    if arch['stages'] != tuple(range(len(arch['stages']))) or not arch['stages']:
        raise CheckpointError(f'Cannot read the stages off the checkpoint (stages found: '
                              f'{list(arch["stages"])})')
    return dict(embed_dim=arch['embed_dims'], depths=arch['depths'],
                num_classes=arch['num_classes'])


def classifier_config(path: str) -> Tuple[str, Dict[str, Any]]:
    """(timm model name, ``timm.create_model`` keyword arguments) from an
    ImageNet model config (configs/ablation/imagenet): a Python file with
    ``model = dict(type='snnmlp_tiny', token_mixer='axial_shift', ...)``::

        name, kwargs = classifier_config('configs/ablation/imagenet/snnmlp-t_as-mlp_in1k.py')
        model = timm.create_model(name, **kwargs)
    """
    from mmengine.config import Config
    model = Config.fromfile(path).get('model')
    if not isinstance(model, Mapping) or model.get('type') not in TIMM_MODEL_NAMES:
        raise ValueError(f'{path} is not an ImageNet model config: it needs '
                         f'model = dict(type=NAME, ...) with NAME one of {TIMM_MODEL_NAMES}')
    kwargs = model.to_dict()  # plain dicts all the way down
    return kwargs.pop('type'), kwargs


def create_from_checkpoint(path: str, variant: Optional[str] = None,
                           num_classes: Optional[int] = None, **kwargs
                           ) -> Tuple[SNNMLPClassifier, Optional[str]]:
    """A timm classifier holding a checkpoint's weights (read with ``safe_load``).

    Args:
        path: checkpoint file or URL, either release layout.
        variant: 'snnmlp_tiny', 'snnmlp_small' or 'snnmlp_base'; None picks
            the one the checkpoint's shapes match, else builds its own shape
            with ``snnmlp_tiny``'s data config (a custom, e.g. toy, model).
        num_classes: if given, must equal the checkpoint's head.
        **kwargs: model arguments not stored in checkpoints (e.g. ``lif_group``).

    Returns:
        (model in eval mode, the released variant it is, or None if custom).
    """
    state = checkpoint_filter_fn(safe_load(path))
    arch = classifier_arch(state)
    if num_classes is not None and num_classes != arch['num_classes']:
        raise CheckpointError(f'{path} has a head of {arch["num_classes"]} classes, '
                              f'not {num_classes}')
    released = find_variant(arch['embed_dim'], arch['depths'])
    released = released.timm_name if released else None
    if variant is not None and variant not in TIMM_VARIANTS:
        raise ValueError(f'Unknown variant {variant!r}; choose from {sorted(TIMM_VARIANTS)}')
    if variant is None:
        variant = released or 'snnmlp_tiny'
        if released is None:
            kwargs = dict(embed_dim=arch['embed_dim'], depths=arch['depths'], **kwargs)
    model = _create_snnmlp(variant, num_classes=arch['num_classes'], **kwargs)
    load_released_weights(model, state, source=str(path))
    return model.eval(), (variant if variant == released else None)


# timm registration ----------------------------------------------------------


def _cfg(url: str = '', **kwargs) -> Dict[str, Any]:
    return {
        'url': url, 'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7),
        # the authors' evaluation: bicubic resize of the short side to 256, centre crop 224
        'crop_pct': 0.875, 'crop_mode': 'center', 'interpolation': 'bicubic',
        'mean': IMAGENET_DEFAULT_MEAN, 'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'patch_embed.proj', 'classifier': 'head',
        # the released files may hold a pickled yacs config: load_pretrained reads them safely
        'custom_load': True,
        'paper_ids': 'arXiv:2203.14679',
        'paper_name': 'Brain-inspired Multilayer Perceptron with Spiking Neurons',
        'origin_url': 'https://github.com/huawei-noah/Efficient-AI-Backbones',
        **kwargs,
    }


default_cfgs = generate_default_cfgs({
    f'{name}.in1k': _cfg(RELEASE_URL + v.release_file) for name, v in TIMM_VARIANTS.items()})


def _create_snnmlp(variant: str, pretrained: bool = False, **kwargs) -> SNNMLPClassifier:
    # the variant's shape and ImageNet drop path, unless given
    v = TIMM_VARIANTS[variant]
    kwargs = {'embed_dim': v.embed_dims, 'depths': v.depths,
              'drop_path_rate': v.drop_path_rate, **kwargs}
    if not kwargs.get('pretrained_cfg'):  # our own cfg, also when called outside timm's registry
        tag, cfg = default_cfgs[variant].default_with_tag
        kwargs['pretrained_cfg'] = dataclasses.replace(cfg, architecture=variant, tag=tag)
    # A weight source in the overlay resets timm's custom_load; set it again so a
    # user's file goes through load_pretrained (safe_load) too.
    kwargs['pretrained_cfg_overlay'] = dict(kwargs.get('pretrained_cfg_overlay') or {},
                                            custom_load=True)
    return build_model_with_cfg(
        SNNMLPClassifier, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(feature_cls='getter', out_indices=(0, 1, 2, 3)),
        **kwargs)


def snnmlp_tiny(pretrained: bool = False, **kwargs) -> SNNMLPClassifier:
    """SNN-MLP-T: C=96, depths 2-2-6-2, 28.3M params; ImageNet top-1 81.88."""
    return _create_snnmlp('snnmlp_tiny', pretrained, **kwargs)


def snnmlp_small(pretrained: bool = False, **kwargs) -> SNNMLPClassifier:
    """SNN-MLP-S: C=96, depths 2-2-18-2, 49.7M params; ImageNet top-1 83.30."""
    return _create_snnmlp('snnmlp_small', pretrained, **kwargs)


def snnmlp_base(pretrained: bool = False, **kwargs) -> SNNMLPClassifier:
    """SNN-MLP-B: C=128, depths 2-2-18-2, 87.9M params; ImageNet top-1 83.59."""
    return _create_snnmlp('snnmlp_base', pretrained, **kwargs)


_ENTRYPOINTS = (snnmlp_tiny, snnmlp_small, snnmlp_base)


def register_timm_models() -> bool:
    """Register the three classifiers in timm's model registry (idempotent).

    Returns True if this call registered any, False if all were already ours."""
    todo = [fn for fn in _ENTRYPOINTS
            if not (is_model(fn.__name__) and model_entrypoint(fn.__name__) is fn)]
    for fn in todo:
        register_model(fn)
    return bool(todo)


register_timm_models()  # on import, as timm's own model files do
