"""SNN-MLP backbone (Li et al., CVPR 2022) for dense prediction.

The network is built from an :class:`~mmsnnmlp.models.variants.SNNMLPSpec`
by :mod:`mmsnnmlp.models.layers`, with the released ImageNet models' key
names, so their state dicts load key for key. ``impl`` picks the
implementation of every fused op. This file imports neither mmdet nor mmseg;
:mod:`mmsnnmlp.registration` hooks it into their registries.
"""
import dataclasses
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..checkpoint import load_backbone_weights
from ..ops import dispatch, set_impl
from .layers import PatchEmbed, build_stages, is_fx_tracing, norm
from .variants import SNNMLPSpec

__all__ = ['SNNMLP']


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


class SNNMLP(BaseModule):
    """SNN-MLP backbone: `Brain-inspired Multilayer Perceptron with Spiking
    Neurons <https://arxiv.org/abs/2203.14679>`_.

    Args:
        arch (str | dict): 'tiny', 'small', 'base' (or 't', 's', 'b'; see
            :data:`~mmsnnmlp.models.variants.VARIANTS`), or a dict with
            ``embed_dims`` and ``depths``. Default: 'tiny'.
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
        channels_last (bool | str): run the network in the channels_last
            (NHWC) memory format inside, whatever format the input has: the
            input is converted once, every layer keeps the format, and the
            outputs come back in the input's format (NCHW-contiguous for an
            NCHW input). The 1x1 convolutions then run as plain GEMMs over
            NHWC activations, and the LIF along W reads contiguous channel
            vectors. Parameters and the state dict are untouched. 'auto': on
            CPU tensors, in eager mode and under torch.compile, not while an
            ONNX export or torch.fx traces; True: on every device; False:
            never. Also an attribute of the same name. Default: 'auto'.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            loads a released ImageNet checkpoint, a converted backbone file
            or a full detector/segmentor checkpoint. Default: None.
        **spec_options: the architecture and ablation options, each a field
            of :class:`~mmsnnmlp.models.variants.SNNMLPSpec` under the same
            name: ``in_channels``, ``patch_size``, ``mlp_ratio``,
            ``drop_rate`` (dropout in the channel MLPs and after the patch
            embedding), ``drop_path_rate`` (default 0.2), ``lif_group``,
            ``lif_tau``, ``lif_vth``, ``learn_tau``, ``learn_vth``,
            ``lif_fix_tau``, ``lif_fix_vth``, ``token_mixer``, ``dwconv``,
            ``shift_size``, ``shift_dilation``, ``lif_placement``.

    Attributes:
        spec (SNNMLPSpec): the architecture, checked.
    """

    def __init__(self,
                 arch: Union[str, Dict] = 'tiny',
                 *,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 impl: str = 'auto',
                 channels_last: Union[bool, str] = 'auto',
                 init_cfg: Optional[Dict] = None,
                 **spec_options):
        super().__init__(init_cfg=init_cfg)
        if channels_last not in (True, False, 'auto'):
            raise ValueError(f"channels_last must be True, False or 'auto', got {channels_last!r}")
        self.channels_last = channels_last
        self.arch = arch
        self.spec = spec = SNNMLPSpec.from_arch(arch, **spec_options)
        self.embed_dims, self.depths = spec.embed_dims, spec.depths
        num_stages = spec.num_stages
        self.out_indices = _check_out_indices(out_indices, num_stages)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {num_stages}], got {frozen_stages!r}')
        if init_cfg is not None and init_cfg.get('type') == 'Pretrained' \
                and not init_cfg.get('checkpoint'):
            raise ValueError('init_cfg of type Pretrained needs a "checkpoint" path or URL')
        self.in_channels = spec.in_channels
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        self.patch_embed = PatchEmbed(spec.in_channels, spec.embed_dims, spec.patch_size)
        self.pos_drop = nn.Dropout(spec.drop_rate)
        self.num_features = list(spec.num_features)
        self.layers = build_stages(spec, with_cp=with_cp)
        self.out_norms = nn.ModuleDict(
            {str(i): norm(self.num_features[i], keep_float32=True) for i in self.out_indices})
        set_impl(self, impl)
        self._freeze_stages()

    @classmethod
    def from_spec(cls, spec: SNNMLPSpec, **kwargs) -> 'SNNMLP':
        """The backbone of ``spec``; ``kwargs``: ``out_indices``, ``frozen_stages``, ..."""
        options = dataclasses.asdict(spec)
        arch = dict(embed_dims=options.pop('embed_dims'), depths=options.pop('depths'))
        return cls(arch, **kwargs, **options)

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
        inside, restore = self._layout(x)
        if inside:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.pos_drop(self.patch_embed(x))
        outs = []
        for i, stage in enumerate(self.layers):
            feat, x = stage(x)
            if i in self.out_indices:
                out = self.out_norms[str(i)](feat)
                outs.append(out.contiguous() if restore else out)
            if i >= self.out_indices[-1]:
                break
        return tuple(outs)

    def _layout(self, x: Tensor) -> Tuple[bool, bool]:
        """(run channels_last inside, return NCHW-contiguous outputs); see ``channels_last``."""
        mode = self.channels_last
        if mode is False or is_fx_tracing() or dispatch.onnx_exporting():
            return False, False  # tracers that want plain graphs
        if mode == 'auto' and x.device.type != 'cpu':
            return False, False  # the Triton kernels read NCHW
        # a tensor that is both (C == 1, or H == W == 1) counts as NCHW
        nchw = x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last)
        return True, nchw

