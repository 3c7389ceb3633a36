"""Score an SNN-MLP classification checkpoint on ImageNet val (or an ImageFolder subset).

Prints top-1 / top-5, images/s, and the figure the released checkpoint of the
same variant reports. The checkpoint is read safely (either release layout);
the model comes from timm's registry and the data pipeline from its
``pretrained_cfg`` (bicubic resize to 256, centre crop 224, ImageNet mean/std).

Class indices: a 1000-class checkpoint maps each folder's synset to its
ImageNet-1k index, so a subset of the 1000 val folders can be scored (still
ranking all 1000 logits); an N-class checkpoint wants exactly N folders, in
sorted order. See mmsnnmlp/analysis/imagenet.py.

Examples::

    python tools/analysis_tools/eval_imagenet.py snnmlp_tiny_81.88.pt \\
        --data /datasets/imagenet/val --device cuda --batch-size 128
    # an ablation variant: its ImageNet model config says which network the file holds
    python tools/analysis_tools/eval_imagenet.py snnmlp-t_as-mlp.pth --data PATH/val \\
        --model-config configs/ablation/imagenet/snnmlp-t_as-mlp_in1k.py
    # a toy classifier (tools/misc/train_toy_classifier.py) at its own input size
    python tools/analysis_tools/eval_imagenet.py work_dirs/toy_cls/model.pt \\
        --data data/toy_imagenet/val --device cpu --img-size 64
"""
import argparse
import json
import os
import platform
import sys

import torch
from timm.data import create_transform, resolve_data_config

from mmsnnmlp.analysis.imagenet import build_eval_loader, evaluate
from mmsnnmlp.checkpoint import CheckpointError
from mmsnnmlp.datasets import DataError
from mmsnnmlp.engine.launch import exit_unless_writable
from mmsnnmlp.models.snnmlp_timm import (PAPER_TOP1, REPORTED_TOP1, classifier_config,
                                         create_from_checkpoint)
from mmsnnmlp.models.variants import VARIANTS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help='checkpoint file or URL (bare state dict or the '
                        'training layout with "model")')
    parser.add_argument('--data', required=True, help='ImageFolder root, e.g. PATH/val')
    parser.add_argument('--arch', choices=sorted(VARIANTS),
                        help='variant; default: the one the checkpoint\'s shapes match')
    parser.add_argument('--model-config',
                        help='ImageNet model config of an ablation variant '
                        '(configs/ablation/imagenet/*.py); default: the paper\'s model')
    parser.add_argument('--num-classes', type=int,
                        help='classes of the checkpoint\'s head (checked; default: read from it)')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1),
                        help='data loading processes (default: up to 4)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--img-size', type=int,
                        help='crop size (resize = size / crop_pct); default: the pretrained '
                        'config\'s 224')
    parser.add_argument('--json', help='also write the results to this JSON file')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.workers < 0:
        parser.error('--batch-size must be >= 1 and --workers >= 0')
    if args.arch and args.model_config:
        parser.error('--arch and --model-config both name the model; give one')
    return args


def main(argv=None):
    args = parse_args(argv)
    exit_unless_writable((args.json, '--json'))
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        sys.exit('error: --device cuda, but CUDA is not available here (use --device cpu)')
    try:
        variant, kwargs = (VARIANTS[args.arch].timm_name if args.arch else None), {}
        if args.model_config:
            variant, kwargs = classifier_config(args.model_config)
        model, variant = create_from_checkpoint(
            args.checkpoint, variant, num_classes=args.num_classes, **kwargs)
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    if args.model_config:
        variant = None  # an ablation variant: the released model's figures do not apply
    overrides = {} if args.img_size is None else {'input_size': (3, args.img_size, args.img_size)}
    data_config = resolve_data_config(overrides, model=model)
    try:
        loader, data_desc = build_eval_loader(
            args.data, model.num_classes, create_transform(**data_config),
            batch_size=args.batch_size, workers=args.workers, pin_memory=device.type == 'cuda')
    except DataError as err:
        sys.exit(f'error: {err}')
    name = variant or args.model_config or \
        f'custom SNN-MLP (embed_dim={model.embed_dim}, depths={model.depths})'
    print(f'model: {name}, {model.num_classes} classes, '
          f'{sum(p.numel() for p in model.parameters()):,} parameters, from {args.checkpoint}')
    print(f'data: {args.data}: {data_desc}')
    print('transform: resize {} ({}), centre crop {}, mean {}, std {}'.format(
        int(data_config['input_size'][-1] / data_config['crop_pct']),
        data_config['interpolation'], data_config['input_size'][-1],
        tuple(round(m, 3) for m in data_config['mean']),
        tuple(round(s, 3) for s in data_config['std'])))

    try:
        result = evaluate(model.to(device), loader, device, amp=args.amp,
                          progress=not args.no_progress)
    except DataError as err:  # an unreadable image; from a worker, the message ends with it
        sys.exit('error: ' + str(err).strip().splitlines()[-1].split('DataError: ', 1)[-1])
    precision = ('fp16' if device.type == 'cuda' else 'bf16') + ' autocast' if args.amp else 'fp32'
    reported = REPORTED_TOP1.get(variant) if model.num_classes == 1000 else None
    full_val = result['images'] == 50000
    fmt = lambda v: 'n/a' if v is None else f'{v:6.2f} %'
    print(f'top-1: {fmt(result["top1"])}', end='')
    if reported is not None:
        print(f'   (reported for {variant} on the 50,000 val images: {reported:.2f} % by the '
              f'released checkpoint, {PAPER_TOP1[variant]} % in the paper'
              + ('' if full_val else f'; this run scored {result["images"]} images') + ')',
              end='')
    print(f'\ntop-5: {fmt(result["top5"])}')
    speed = result['images_per_s'] or float('nan')
    print(f'speed: {speed:.1f} images/s forward ({result["end_to_end_images_per_s"]:.1f} '
          f'end to end) on {device} ({_device_name(device)}), batch {args.batch_size}, '
          f'{precision}, {result["images"]} images')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(result, checkpoint=args.checkpoint, variant=variant, data=args.data,
                           reported_top1=reported, device=str(device), amp=args.amp,
                           batch_size=args.batch_size, input_size=data_config['input_size']),
                      f, indent=2)
    return result


def _device_name(device: torch.device) -> str:
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


if __name__ == '__main__':
    main()
