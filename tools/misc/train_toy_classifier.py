"""Train a narrow SNN-MLP classifier on a toy ImageFolder set, on CPU in a minute.

For demos and tests of tools/analysis_tools/eval_imagenet.py, not for real
training. The model is timm's ``snnmlp_tiny`` with a narrow width and
``--depths``; classes are the sorted folder names of ``<data>/train`` (the
rule the eval tool applies to a non-ImageNet head). The checkpoint is saved in
the released training layout: ``{'model': state_dict, 'config': {...}, ...}``.

Usage::

    python tools/misc/make_toy_imagenet.py --out data/toy_imagenet
    python tools/misc/train_toy_classifier.py --data data/toy_imagenet \\
        --out work_dirs/toy_cls/model.pt
"""
import argparse
import os
import os.path as osp
import random
import time

import timm
import torch
import torch.nn.functional as F
from timm.data import create_transform, resolve_data_config
from torch.utils.data import DataLoader

from mmsnnmlp.analysis.imagenet import LabelledImages, class_indices, scan_image_folder
from mmsnnmlp.models.snnmlp_timm import register_timm_models


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', required=True, help='root holding train/<class>/<image>')
    parser.add_argument('--out', required=True, help='checkpoint file to write')
    parser.add_argument('--iters', type=int, default=150)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--img-size', type=int, default=64, help='training crop size')
    parser.add_argument('--embed-dim', type=int, default=16)
    parser.add_argument('--depths', type=int, nargs=4, default=(1, 1, 1, 1))
    parser.add_argument('--lr', type=float, default=3e-3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=int, default=0)
    parser.add_argument('--threads', type=int, default=1,
                        help='CPU threads; a model this small runs fastest on one')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.batch_size < 1 or args.img_size < 8 or args.threads < 1:
        parser.error('need --iters >= 1, --batch-size >= 1, --img-size >= 8 and --threads >= 1')
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    random.seed(args.seed)  # timm's random crops draw from Python's RNG
    torch.manual_seed(args.seed)
    register_timm_models()
    folders = scan_image_folder(osp.join(args.data, 'train'))
    index, _ = class_indices(list(folders), len(folders))
    samples = [(p, index[f]) for f in sorted(folders) for p in folders[f]]
    model = timm.create_model('snnmlp_tiny', num_classes=len(folders), embed_dim=args.embed_dim,
                              depths=tuple(args.depths), drop_path_rate=0.0)
    data_config = resolve_data_config({'input_size': (3, args.img_size, args.img_size)},
                                      model=model)
    # mild augmentation: colour is a class cue here, so no colour jitter
    transform = create_transform(**data_config, is_training=True, scale=(0.6, 1.0),
                                 color_jitter=0.0)
    loader = DataLoader(LabelledImages(samples, transform), batch_size=args.batch_size,
                        shuffle=True, drop_last=len(samples) >= args.batch_size,
                        num_workers=args.workers,
                        generator=torch.Generator().manual_seed(args.seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.iters,
                                                   pct_start=0.1)
    model.train()
    step, start, seen, correct = 0, time.perf_counter(), 0, 0
    while step < args.iters:
        for images, targets in loader:
            logits = model(images)
            loss = F.cross_entropy(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            seen += len(targets)
            correct += int((logits.argmax(1) == targets).sum())
            if step % 25 == 0 or step == args.iters:
                print(f'iter {step}/{args.iters}  loss {loss.item():.3f}  train acc '
                      f'{100 * correct / seen:.1f} % (last {seen} images)  '
                      f'{time.perf_counter() - start:.0f} s', flush=True)
                seen = correct = 0
            if step == args.iters:
                break
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save({'model': model.state_dict(), 'iters': step,
                'config': {'model': 'snnmlp_tiny', 'embed_dim': args.embed_dim,
                           'depths': list(args.depths), 'num_classes': len(folders),
                           'img_size': args.img_size, 'classes': sorted(folders)}},
               args.out)
    print(f'{len(folders)} classes, {len(samples)} training images; saved {args.out}')


if __name__ == '__main__':
    main()
