"""Params and FLOPs of detectors, segmentors and classifiers.

FLOPs follow mmdet/mmseg's get_flops convention (one multiply-add = one FLOP,
counted by mmengine's analyzer; elementwise work, i.e. norms, GELU, LIF, the
shift, is not counted). Models run on the reference ops: the analyzer counts
``F.group_norm`` but cannot see inside our fused library ops, and FLOPs are
the model's, not the kernels'. Segmentors are counted without the auxiliary
head (used in training only); detectors through their test-mode tensor
forward (RPN + RoI heads on the RPN's proposals). Params count the whole
model as trained (auxiliary head included), as the paper's tables do.
"""
from functools import partial

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from torch import nn

from ..engine.launch import library_of
from ..ops import set_impl


def build_model(cfg):
    """(model, library): the config's model in eval mode on CPU, without
    pretrained loading or BN sync, on the reference ops."""
    library = library_of(cfg)
    init_default_scope(library)
    cfg.model.backbone.init_cfg = None
    registry = __import__(f'{library}.registry', fromlist=['MODELS']).MODELS
    model = revert_sync_batchnorm(registry.build(cfg.model)).eval()
    return set_impl(model, 'reference'), library


def dummy_batch(library: str, height: int, width: int):
    """One random image and its meta, as the data preprocessor would emit."""
    inputs = torch.rand(1, 3, height, width)
    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                batch_input_shape=(height, width), scale_factor=(1.0, 1.0))
    if library == 'mmdet':
        from mmdet.structures import DetDataSample
        return inputs, [DetDataSample(metainfo=meta)]
    from mmseg.structures import SegDataSample
    return inputs, [SegDataSample(metainfo=meta)]


def complexity(cfg, height: int, width: int) -> dict:
    """flops, params, backbone_params, shape and library of a detector or
    segmentor config at a 1x3xHxW input."""
    model, library = build_model(cfg)
    params = sum(p.numel() for p in model.parameters())
    if library == 'mmseg' and getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None  # training-only: not in the inference FLOPs
    inputs, samples = dummy_batch(library, height, width)
    # the tracer takes tensors only: bind the data samples
    model.forward = partial(model.forward, data_samples=samples, mode='tensor')
    with torch.no_grad():
        info = get_model_complexity_info(model, inputs=(inputs,), show_table=False,
                                         show_arch=False)
    backbone = sum(p.numel() for p in model.backbone.parameters())
    return dict(flops=info['flops'], params=params, backbone_params=backbone,
                shape=(height, width), library=library)


def classifier_complexity(model: nn.Module, size: int = 224) -> dict:
    """flops and params of an image classifier at a 1x3xSIZExSIZE input."""
    model = set_impl(model.eval(), 'reference')
    with torch.no_grad():
        info = get_model_complexity_info(model, inputs=(torch.rand(1, 3, size, size),),
                                         show_table=False, show_arch=False)
    return dict(flops=info['flops'], params=sum(p.numel() for p in model.parameters()))
