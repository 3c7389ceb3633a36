"""The backbones SNN-MLP is timed against, built with random weights: SNN-MLP
T/S/B (and T on the unfused reference ops, and T in NCHW inside), Swin-T/S and
ResNet-50 (mmdet's where it imports, else timm's / torchvision's), and timm's
ImageNet classifiers with their heads.
"""
from typing import Sequence, Tuple

from torch import Tensor, nn

from ..models import SNNMLP
from ..models.variants import SHORT_NAMES, TIMM_VARIANTS

SNNMLP_ARCHS = SHORT_NAMES  # 'snnmlp-t' -> 'tiny', ...
SWIN_DEPTHS = {'swin-t': (2, 2, 6, 2), 'swin-s': (2, 2, 18, 2)}
# timm's ImageNet classifiers (ours are registered by mmsnnmlp), for img/s at
# 224x224 as the authors' get_throughput.sh measures it
CLASSIFIERS = tuple(TIMM_VARIANTS) + ('swin_tiny_patch4_window7_224',
                                      'swin_small_patch4_window7_224')
# SNN-MLP-T variants: the official model's computation (the unfused reference
# ops), and the backbone without its internal channels_last on CPU
SNNMLP_T_VARIANTS = {'snnmlp-t-ref': (dict(impl='reference'), 'mmsnnmlp, unfused reference'),
                     'snnmlp-t-nchw': (dict(channels_last=False), 'mmsnnmlp, NCHW inside')}
MODELS = (tuple(SNNMLP_ARCHS) + tuple(SNNMLP_T_VARIANTS) + tuple(SWIN_DEPTHS) + ('resnet50',)
          + CLASSIFIERS)


class TimmSwin(nn.Module):
    """timm's Swin as an NCHW backbone returning the stages ``out_indices``.

    timm wants H and W divisible by the 4-pixel patch; like mmdet's data
    preprocessor we pad bottom/right to a multiple of 32."""

    def __init__(self, name: str, height: int, width: int,
                 out_indices: Sequence[int] = (0, 1, 2, 3)):
        super().__init__()
        import timm
        self.pad = ((-height) % 32, (-width) % 32)
        self.body = timm.create_model(
            name, pretrained=False, features_only=True, strict_img_size=False,
            img_size=(height + self.pad[0], width + self.pad[1]), drop_path_rate=0.2,
            out_indices=tuple(out_indices))

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        if any(self.pad):
            x = nn.functional.pad(x, (0, self.pad[1], 0, self.pad[0]))
        return tuple(f.permute(0, 3, 1, 2) for f in self.body(x))  # NHWC -> NCHW


class TorchvisionResNet50(nn.Module):
    """torchvision's ResNet-50 without the head, returning C2..C5."""

    def __init__(self):
        super().__init__()
        import torchvision
        net = torchvision.models.resnet50(weights=None)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x, outs = self.stem(x), []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return tuple(outs)


def _mmdet_backbones():
    """mmdet's (SwinTransformer, ResNet), or None where mmdet (or mmcv) does not import."""
    try:
        from mmdet.models.backbones import ResNet, SwinTransformer
    except Exception:  # ImportError, or mmcv without its compiled ops
        return None
    return SwinTransformer, ResNet


def build_backbone(name: str, shape: Sequence[int], baselines: str = 'auto',
                   out_indices: Sequence[int] = (0, 1, 2, 3)) -> Tuple[nn.Module, str]:
    """(model, implementation note) with random weights, for timing.

    ``baselines``: Swin/ResNet from 'mmdet', 'timm' (torchvision's ResNet),
    or 'auto' (mmdet where it imports)."""
    if name in SNNMLP_ARCHS:
        return SNNMLP(arch=SNNMLP_ARCHS[name], out_indices=out_indices), 'mmsnnmlp'
    if name in SNNMLP_T_VARIANTS:
        options, note = SNNMLP_T_VARIANTS[name]
        return SNNMLP(arch='tiny', out_indices=out_indices, **options), note
    if name in CLASSIFIERS:
        import timm

        from ..models.snnmlp_timm import register_timm_models
        register_timm_models()  # even with the timm patch opted out
        return timm.create_model(name), 'timm classifier'
    mm = _mmdet_backbones() if baselines in ('auto', 'mmdet') else None
    if mm is None and baselines == 'mmdet':
        raise RuntimeError("baselines='mmdet': mmdet's backbones do not import here")
    if name in SWIN_DEPTHS:
        if mm is not None:  # the settings of mmdet's Mask R-CNN Swin configs
            return mm[0](embed_dims=96, depths=SWIN_DEPTHS[name], num_heads=[3, 6, 12, 24],
                         window_size=7, mlp_ratio=4, qkv_bias=True, drop_path_rate=0.2,
                         patch_norm=True, out_indices=tuple(out_indices)), 'mmdet'
        timm_name = f'swin_{"tiny" if name == "swin-t" else "small"}_patch4_window7_224'
        return TimmSwin(timm_name, shape[2], shape[3], out_indices), 'timm'
    if name == 'resnet50':
        if mm is not None:
            return mm[1](depth=50, out_indices=tuple(out_indices), style='pytorch'), 'mmdet'
        return TorchvisionResNet50(), 'torchvision'
    raise ValueError(f'unknown model {name!r}; choose from {MODELS}')
