"""Params and FLOPs of the ablation variants (configs/ablation), beside the paper's top-1.

* ImageNet: every configs/ablation/imagenet config, built with timm; params
  exactly, FLOPs at 1x3x224x224 with mmengine's analyzer (one multiply-add =
  one FLOP; elementwise work, i.e. norms, GELU, LIF, the shift, not counted).
* COCO / ADE20K (``--dense``): every configs/ablation/det and seg config:
  params of the whole model as get_flops.py counts them; with
  ``--dense-flops`` also its FLOPs at 800x1280 / 512x2048 (minutes per
  config on a CPU).

Prints a Markdown table; ``--json`` also writes the numbers.

Example:
    python tools/analysis_tools/ablation_table.py --dense --json ablation.json
"""
import argparse
import glob
import json
import os.path as osp
import sys

import timm
import torch
from mmengine.config import Config

import mmsnnmlp  # noqa: F401  registers SNNMLP and the timm models
from mmsnnmlp.analysis.flops import build_model, classifier_complexity, complexity
from mmsnnmlp.engine.launch import exit_unless_writable
from mmsnnmlp.models.snnmlp_timm import classifier_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def imagenet_rows():
    rows = []
    for path in sorted(glob.glob(osp.join(ROOT, 'configs/ablation/imagenet/*.py'))):
        name, kwargs = classifier_config(path)
        result = classifier_complexity(timm.create_model(name, **kwargs), 224)
        rows.append(dict(config=osp.relpath(path, ROOT), kwargs=kwargs,
                         paper_top1=Config.fromfile(path).get('paper_top1'),
                         params=result['params'], flops=result['flops']))
        print(f'{rows[-1]["config"]}: {rows[-1]["params"]:,} params, '
              f'{rows[-1]["flops"] / 1e9:.3f} GFLOPs', file=sys.stderr, flush=True)
    return rows


def dense_rows(with_flops: bool):
    rows = []
    for path in sorted(glob.glob(osp.join(ROOT, 'configs/ablation/det/*.py')) +
                       glob.glob(osp.join(ROOT, 'configs/ablation/seg/*.py'))):
        cfg = Config.fromfile(path)
        row = dict(config=osp.relpath(path, ROOT))
        if with_flops:
            shape = (800, 1280) if cfg.default_scope == 'mmdet' else (512, 2048)
            result = complexity(cfg, *shape)
            row.update(params=result['params'], flops=result['flops'], shape=shape)
        else:
            model, _ = build_model(cfg)
            row['params'] = sum(p.numel() for p in model.parameters())
        rows.append(row)
        print(f'{row["config"]}: {row["params"]:,} params'
              + (f', {row["flops"] / 1e9:.1f} GFLOPs' if with_flops else ''),
              file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dense', action='store_true', help='also the COCO/ADE20K configs')
    parser.add_argument('--dense-flops', action='store_true',
                        help='with --dense: their FLOPs too (slow)')
    parser.add_argument('--json', help='write the numbers here')
    args = parser.parse_args(argv)
    exit_unless_writable((args.json, '--json'))
    torch.set_grad_enabled(False)
    result = dict(imagenet=imagenet_rows())
    print('| ImageNet config | paper top-1 | params | FLOPs (224x224) |\n|---|---|---|---|')
    for row in result['imagenet']:
        top1 = '-' if row['paper_top1'] is None else f'{row["paper_top1"]}'
        print(f'| `{osp.basename(row["config"])}` | {top1} | {row["params"]:,} | '
              f'{row["flops"] / 1e9:.3f}G |')
    if args.dense:
        result['dense'] = dense_rows(args.dense_flops)
        print('\n| config | params | FLOPs |\n|---|---|---|')
        for row in result['dense']:
            flops = f'{row["flops"] / 1e9:.1f}G' if 'flops' in row else 'not measured'
            print(f'| `{osp.basename(row["config"])}` | {row["params"] / 1e6:.2f}M | {flops} |')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2, default=str)


if __name__ == '__main__':
    main()
