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

from mmengine.config import DictAction

import mmsnnmlp  # noqa: F401  registers SNNMLP in mmdet and mmseg
from mmsnnmlp.analysis.flops import complexity
from mmsnnmlp.engine.launch import library_of, load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Params and FLOPs of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--shape', type=int, nargs='+', default=None,
                        help='input H W (default: 800 1280 for det, 512 2048 for seg)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


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
