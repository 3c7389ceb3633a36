"""Whole-model inference speed of detector / segmentor configs on a dataset's
images, side by side: data loading (the config's test pipeline) timed apart
from the model, params, FLOPs, peak memory, and mAP / mIoU when the
annotations are there. CPU or GPU. Writes JSON and markdown.

Configs are files or shipped configs of any installed package, e.g. ours
against the matching Swin baseline of mmdet:

    python tools/analysis_tools/benchmark_model.py \\
        mmsnnmlp::det/mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py \\
        mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py \\
        --data-root data/coco/ --num-images 50 --device cuda --out work_dirs/bench

Without --checkpoints the weights are random (speed, params and FLOPs hold;
the metric is then meaningless).
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import DictAction

import mmsnnmlp  # noqa: F401  registers SNNMLP in mmdet and mmseg
from mmsnnmlp.analysis.benchmark import DTYPES, environment
from mmsnnmlp.analysis.model_benchmark import COLUMNS, benchmark_configs, report_markdown
from mmsnnmlp.analysis.tables import text_table
from mmsnnmlp.fileio import atomic_write_json


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Whole-model inference benchmark of configs')
    parser.add_argument('configs', nargs='+', help='config files (or pkg::path names)')
    parser.add_argument('--names', nargs='+', help='a row name per config (default: file name)')
    parser.add_argument('--checkpoints', nargs='+',
                        help="a checkpoint per config, 'none' for random weights")
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cpu, cuda or cuda:N (default: cuda when available)')
    parser.add_argument('--data-root', help="the test set's data_root for every config")
    parser.add_argument('--num-images', type=int,
                        help='benchmark on the first N test images (default: all)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed batches before the timed pass (default: 2)')
    parser.add_argument('--num-workers', type=int, default=0,
                        help='dataloader workers (default 0: the data time is the '
                        "pipeline's own, in this process)")
    parser.add_argument('--dtype', choices=sorted(DTYPES), default='fp32',
                        help='autocast dtype of the model (default: fp32)')
    parser.add_argument('--no-flops', action='store_true', help='skip counting FLOPs')
    parser.add_argument('--no-eval', action='store_true', help='skip the test metric')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every config, key=value')
    parser.add_argument('--out', default='work_dirs/benchmark_model',
                        help='folder for benchmark_model.json and benchmark_model.md')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    checkpoints = None
    if args.checkpoints:
        checkpoints = [None if c.lower() == 'none' else c for c in args.checkpoints]
    try:
        rows = benchmark_configs(
            args.configs, names=args.names, checkpoints=checkpoints, device=args.device,
            cfg_options=args.cfg_options, data_root=args.data_root,
            num_images=args.num_images, num_workers=args.num_workers, warmup=args.warmup,
            dtype=args.dtype, flops=not args.no_flops, evaluate=not args.no_eval)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(str(err))
    env = environment(torch.device(args.device))
    os.makedirs(args.out, exist_ok=True)
    atomic_write_json(osp.join(args.out, 'benchmark_model.json'),
                      dict(environment=env, rows=rows), overwrite=True)
    with open(osp.join(args.out, 'benchmark_model.md'), 'w') as f:
        f.write(report_markdown(rows, env))
    print(text_table(rows, COLUMNS))
    print(f'written: {args.out}/benchmark_model.json, benchmark_model.md')
    return rows


if __name__ == '__main__':
    main()
