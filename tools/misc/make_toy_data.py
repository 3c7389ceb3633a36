"""Write a small synthetic dataset in the real COCO and ADE20K layouts.

Images show coloured shapes (circle, square, triangle) on a noisy textured
background, deterministic from ``--seed``. The same scenes are written as

* COCO instance segmentation: ``<out>/coco/{train2017,val2017}/*.jpg`` and
  ``<out>/coco/annotations/instances_{train2017,val2017}.json`` (polygons,
  and RLE for every ``--rle-every``-th object);
* ADE20K semantic segmentation:
  ``<out>/ade/ADEChallengeData2016/{images,annotations}/{training,validation}``
  with JPEG images and label PNGs where 0 is "other" (ignored under
  ``reduce_zero_label``) and 1..4 are the first four ADE20K classes
  (wall, building, sky, floor) standing for background, circle, square, triangle.

Usage: python tools/misc/make_toy_data.py --out data/toy [--seed 0]
"""
import argparse
import json
import os
import os.path as osp

import cv2
import numpy as np
from pycocotools import mask as mask_utils

CLASSES = ('circle', 'square', 'triangle')
# ADE20K ids (before reduce_zero_label): 1 wall, 2 building, 3 sky, 4 floor.
ADE_BACKGROUND, ADE_SHAPES = 1, (2, 3, 4)
SPLITS = {'train': ('train2017', 'training'), 'val': ('val2017', 'validation')}


def _shape_polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    if kind == 'circle':
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    elif kind == 'square':
        t = angle + np.pi / 4 + np.arange(4) * np.pi / 2
    else:
        t = angle - np.pi / 2 + np.arange(3) * 2 * np.pi / 3
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def make_scene(rng: np.random.Generator, size: int, max_objects: int):
    """One image, its instances (class index, polygon, mask) and its label map."""
    h = w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(60, 190, 3)
    tilt = rng.uniform(-40, 40, 3)
    image = base + tilt * (xx[..., None] / w - 0.5) + rng.normal(0, 12, (h, w, 3))
    label = np.full((h, w), ADE_BACKGROUND, np.uint8)
    # a strip of unlabelled ("other", 0) pixels, ignored by the seg metric
    if rng.random() < 0.5:
        label[: rng.integers(2, 8)] = 0
    instances = []
    occupied = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, max_objects + 1)):
        cls = int(rng.integers(len(CLASSES)))
        # triangles cover less of their circumcircle: enlarge them to balance classes
        r = rng.uniform(0.1, 0.22) * size * (1.4 if CLASSES[cls] == 'triangle' else 1.0)
        r = min(r, 0.45 * size)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        poly = _shape_polygon(CLASSES[cls], cx, cy, r, rng.uniform(0, np.pi / 2))
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        mask = mask.astype(bool)
        if (mask & occupied).sum() > 0.1 * mask.sum():
            continue  # keep objects mostly unoccluded
        mask &= ~occupied
        occupied |= mask
        colour = np.array([(60, 60, 230), (40, 200, 40), (230, 120, 20)][cls], float)
        image[mask] = colour + rng.normal(0, 10, (mask.sum(), 3))
        label[mask] = ADE_SHAPES[cls]
        instances.append((cls, poly, mask))
    return np.clip(image, 0, 255).astype(np.uint8), instances, label


def _coco_annotation(ann_id, image_id, cls, poly, mask, use_rle):
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    if use_rle:
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        segmentation = {'size': list(rle['size']), 'counts': rle['counts'].decode('ascii')}
    else:
        segmentation = [np.round(poly, 2).ravel().tolist()]
    return {'id': ann_id, 'image_id': image_id, 'category_id': cls + 1,
            'segmentation': segmentation, 'area': float(mask.sum()),
            'bbox': [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], 'iscrowd': 0}


def write_split(out: str, split: str, count: int, rng, size: int, max_objects: int,
                rle_every: int, start_id: int):
    coco_dir, ade_dir = SPLITS[split]
    coco_img_dir = osp.join(out, 'coco', coco_dir)
    ade_root = osp.join(out, 'ade', 'ADEChallengeData2016')
    ade_img_dir = osp.join(ade_root, 'images', ade_dir)
    ade_ann_dir = osp.join(ade_root, 'annotations', ade_dir)
    for d in (coco_img_dir, ade_img_dir, ade_ann_dir, osp.join(out, 'coco', 'annotations')):
        os.makedirs(d, exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        image_id = start_id + i
        image, instances, label = make_scene(rng, size, max_objects)
        name = f'{image_id:012d}.jpg'
        cv2.imwrite(osp.join(coco_img_dir, name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(osp.join(ade_img_dir, f'ADE_{split}_{image_id:08d}.jpg'), image,
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(osp.join(ade_ann_dir, f'ADE_{split}_{image_id:08d}.png'), label)
        images.append({'id': image_id, 'file_name': name, 'height': size, 'width': size})
        for cls, poly, mask in instances:
            ann_id = len(annotations) + 1
            annotations.append(_coco_annotation(ann_id, image_id, cls, poly, mask,
                                                use_rle=rle_every > 0 and ann_id % rle_every == 0))
    coco = {'images': images, 'annotations': annotations,
            'categories': [{'id': i + 1, 'name': n, 'supercategory': 'shape'}
                           for i, n in enumerate(CLASSES)]}
    with open(osp.join(out, 'coco', 'annotations', f'instances_{coco_dir}.json'), 'w') as f:
        json.dump(coco, f)
    return len(images), len(annotations)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/toy', help='output root')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=160)
    parser.add_argument('--num-val', type=int, default=32)
    parser.add_argument('--size', type=int, default=128, help='image side in pixels')
    parser.add_argument('--max-objects', type=int, default=3)
    parser.add_argument('--rle-every', type=int, default=5,
                        help='store every N-th object mask as RLE (0: polygons only)')
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    for split, count, start in (('train', args.num_train, 1), ('val', args.num_val, 100000)):
        n_img, n_ann = write_split(args.out, split, count, rng, args.size, args.max_objects,
                                   args.rle_every, start)
        print(f'{split}: {n_img} images, {n_ann} objects')
    print(f'toy COCO in {osp.join(args.out, "coco")}, toy ADE20K in '
          f'{osp.join(args.out, "ade", "ADEChallengeData2016")}')


if __name__ == '__main__':
    main()
