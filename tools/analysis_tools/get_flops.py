"""Params and FLOPs of a detector or segmentor config at a given input shape.

FLOPs follow mmdet/mmseg's get_flops convention (one multiply-add = one FLOP,
counted by mmengine's analyzer). Segmentors are counted without the auxiliary
head (used in training only); detectors through their test-mode tensor
forward (RPN + RoI heads on the RPN's proposals). Params count the whole
model as trained (auxiliary head included), as the paper's tables do.

Example:
    python tools/analysis_tools/get_flops.py CONFIG --shape 800 1280
"""
import argparse
from functools import partial

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

import mmsnnmlp  # noqa: F401  registers SNNMLP in mmdet and mmseg
from mmsnnmlp.ops import set_impl
from mmsnnmlp.utils import library_of, load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Params and FLOPs of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--shape', type=int, nargs='+', default=None,
                        help='input H W (default: 800 1280 for det, 512 2048 for seg)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def build_model(cfg):
    """Model in eval mode on CPU, without pretrained loading or BN sync, on
    the reference ops: the analyzer counts ``F.group_norm`` but cannot see
    inside our fused library ops, and FLOPs are the model's, not the kernels'."""
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


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    library = library_of(cfg)
    shape = args.shape or ([800, 1280] if library == 'mmdet' else [512, 2048])
    if len(shape) == 1:
        shape = shape * 2
    if len(shape) != 2 or min(shape) < 32:
        raise SystemExit(f'--shape takes H W (each >= 32), got {shape}')
    result = complexity(cfg, *shape)
    line = '=' * 40
    print(f'{line}\nConfig: {args.config}\nInput shape: 1x3x{shape[0]}x{shape[1]}\n'
          f'FLOPs: {result["flops"] / 1e9:.1f} G\nParams: {result["params"] / 1e6:.2f} M '
          f'(backbone {result["backbone_params"] / 1e6:.2f} M)\n{line}')


if __name__ == '__main__':
    main()
