"""Write a small synthetic classification dataset in the ImageNet folder layout.

``<out>/{train,val}/<synset>/<name>.JPEG`` with synset-like folder names
(``n90000000``, ``n90000001``, ...: the shape of ImageNet's, but none of its
1000 synsets), and ``<out>/classes.txt`` (``<synset> <description>`` per line).
Class k shows one shape in one colour (cycling through circle, square,
triangle, cross, ring; hues spread around the colour wheel) at a random
position, size and rotation, on a noisy textured background; image sizes vary
and are rarely square, like ImageNet's. Everything is deterministic from
``--seed``.

Usage: python tools/misc/make_toy_imagenet.py --out data/toy_imagenet [--classes 5] [--seed 0]
"""
import argparse
import colorsys
import os
import os.path as osp

import cv2
import numpy as np

SHAPES = ('circle', 'square', 'triangle', 'cross', 'ring')
FIRST_SYNSET = 90000000  # ImageNet's synsets run from n01440764 to n15075141


def synset(k: int) -> str:
    return f'n{FIRST_SYNSET + k:08d}'


def class_colour(k: int, num_classes: int) -> np.ndarray:
    """A BGR colour per class, hues evenly spaced."""
    r, g, b = colorsys.hsv_to_rgb(k / num_classes, 0.85, 0.9)
    return np.array([b, g, r]) * 255


def draw_image(rng: np.random.Generator, k: int, num_classes: int, min_size: int,
               max_size: int) -> np.ndarray:
    h, w = (int(v) for v in rng.integers(min_size, max_size + 1, 2))
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(70, 180, 3)
    tilt = rng.uniform(-40, 40, 3)
    image = base + tilt * (xx[..., None] / w - 0.5) + rng.normal(0, 14, (h, w, 3))
    shape = SHAPES[k % len(SHAPES)]
    r = rng.uniform(0.22, 0.38) * min(h, w)
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    angle = rng.uniform(0, 2 * np.pi)
    mask = np.zeros((h, w), np.uint8)
    if shape in ('circle', 'ring'):
        cv2.circle(mask, (round(cx), round(cy)), round(r), 1, -1)
        if shape == 'ring':
            cv2.circle(mask, (round(cx), round(cy)), round(0.55 * r), 0, -1)
    elif shape == 'cross':
        for a in (angle, angle + np.pi / 2):
            d = np.array([np.cos(a), np.sin(a)])
            n = np.array([-d[1], d[0]])
            c = np.array([cx, cy])
            bar = np.stack([c + r * d + 0.3 * r * n, c + r * d - 0.3 * r * n,
                            c - r * d - 0.3 * r * n, c - r * d + 0.3 * r * n])
            cv2.fillPoly(mask, [np.round(bar).astype(np.int32)], 1)
    else:
        corners = 4 if shape == 'square' else 3
        t = angle + np.arange(corners) * 2 * np.pi / corners
        poly = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
    inside = mask.astype(bool)
    colour = class_colour(k, num_classes) + rng.normal(0, 12, 3)
    image[inside] = colour + rng.normal(0, 10, (int(inside.sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_split(out: str, split: str, per_class: int, num_classes: int, rng,
                min_size: int, max_size: int) -> int:
    count = 0
    for k in range(num_classes):
        folder = osp.join(out, split, synset(k))
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            image = draw_image(rng, k, num_classes, min_size, max_size)
            name = (f'{synset(k)}_{i + 1}.JPEG' if split == 'train'
                    else f'ILSVRC2012_val_{k * per_class + i + 1:08d}.JPEG')
            cv2.imwrite(osp.join(folder, name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            count += 1
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/toy_imagenet', help='output root')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--classes', type=int, default=5)
    parser.add_argument('--train-per-class', type=int, default=60)
    parser.add_argument('--val-per-class', type=int, default=20)
    parser.add_argument('--min-size', type=int, default=56, help='smallest image side')
    parser.add_argument('--max-size', type=int, default=96, help='largest image side')
    args = parser.parse_args(argv)
    if args.classes < 2 or args.train_per_class < 1 or args.val_per_class < 1:
        parser.error('need --classes >= 2 and at least one train and one val image per class')
    if not 8 <= args.min_size <= args.max_size:
        parser.error('need 8 <= --min-size <= --max-size')
    if osp.isdir(osp.join(args.out, 'train')) or osp.isdir(osp.join(args.out, 'val')):
        parser.error(f'{args.out} already holds train/ or val/; choose another --out')
    rng = np.random.default_rng(args.seed)
    counts = {split: write_split(args.out, split, n, args.classes, rng, args.min_size,
                                 args.max_size)
              for split, n in (('train', args.train_per_class), ('val', args.val_per_class))}
    with open(osp.join(args.out, 'classes.txt'), 'w') as f:
        for k in range(args.classes):
            f.write(f'{synset(k)} {SHAPES[k % len(SHAPES)]}, hue {k / args.classes:.2f}\n')
    print(f'{args.classes} classes; train: {counts["train"]} images, val: {counts["val"]} '
          f'images, in {args.out}')


if __name__ == '__main__':
    main()
