"""Pre-flight checks of a config's datasets, with errors that say what and where.

mmdet/mmseg only notice a missing folder or image when a dataloader worker
trips over it, deep inside mmcv. We look first: data roots, annotation files,
every image an annotation names and every label map an image needs; with
``full=True`` (by default for datasets of up to ``FULL_CHECK_LIMIT``
images) also that each image decodes and each label map holds only known
classes.
"""
import json
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional

import cv2
import numpy as np

PREPARE_HINT = {
    'mmdet': ('COCO 2017 is expected as <data_root>/annotations/instances_{train,val}2017.json '
              'and <data_root>/{train,val}2017/*.jpg (download from cocodataset.org, or make '
              'toy data: python tools/misc/make_toy_data.py --out data/toy). Point the config '
              'at it with --cfg-options or a symlink: ln -s /path/to/coco data/coco'),
    'mmseg': ('ADE20K is expected as <data_root>/images/{training,validation}/*.jpg and '
              '<data_root>/annotations/{training,validation}/*.png (ADEChallengeData2016.zip '
              'from the MIT scene parsing benchmark, or toy data: python '
              'tools/misc/make_toy_data.py --out data/toy). Link it: '
              'ln -s /path/to/ADEChallengeData2016 data/ade/ADEChallengeData2016'),
}
# Decode every image (and read every label map) when a dataset has at most
# this many images; bigger ones get the existence checks only.
FULL_CHECK_LIMIT = 2000


class DataError(RuntimeError):
    """A dataset problem found before training or testing starts."""


def _datasets(cfg: Dict) -> Iterable[Dict]:
    """Leaf dataset configs, looking through wrappers (Repeat/Concat/ClassBalanced)."""
    if 'datasets' in cfg:
        for sub in cfg['datasets']:
            yield from _datasets(sub)
    elif 'dataset' in cfg:
        yield from _datasets(cfg['dataset'])
    else:
        yield cfg


def _join(root: str, path: str) -> str:
    return path if not root or osp.isabs(path) else osp.join(root, path)


def _short(items: List[str], limit: int = 5) -> str:
    more = f' ... (+{len(items) - limit} more)' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


def _decodes(path: str) -> bool:
    return cv2.imread(path, cv2.IMREAD_UNCHANGED) is not None


def _check_coco(ds: Dict, full: Optional[bool]) -> None:
    root = ds.get('data_root', '')
    ann = _join(root, ds['ann_file'])
    if not osp.isfile(ann):
        raise DataError(f'Annotation file not found: {ann}')
    if osp.getsize(ann) == 0:
        raise DataError(f'Annotation file is empty: {ann}')
    try:
        with open(ann) as f:
            coco = json.load(f)
    except json.JSONDecodeError as err:
        raise DataError(f'Annotation file is not valid JSON: {ann} ({err})') from err
    images = coco.get('images') if isinstance(coco, dict) else None
    if not images:
        raise DataError(f'Annotation file lists no images: {ann}')
    prefix = _join(root, ds.get('data_prefix', {}).get('img', ''))
    missing = [im['file_name'] for im in images
               if not osp.isfile(osp.join(prefix, im['file_name']))]
    if missing:
        raise DataError(f'{len(missing)} image(s) named in {ann} are not in {prefix}: '
                        f'{_short(missing)}')
    if full is None:
        full = len(images) <= FULL_CHECK_LIMIT
    if full:
        bad = [im['file_name'] for im in images if not _decodes(osp.join(prefix, im['file_name']))]
        if bad:
            raise DataError(f'{len(bad)} image(s) in {prefix} cannot be decoded: {_short(bad)}')


def _check_seg(ds: Dict, num_classes: int, full: Optional[bool]) -> None:
    root = ds.get('data_root', '')
    prefix = ds.get('data_prefix', {})
    img_dir = _join(root, prefix.get('img_path', ''))
    seg_dir = _join(root, prefix.get('seg_map_path', ''))
    for d in (img_dir, seg_dir):
        if not osp.isdir(d):
            raise DataError(f'Folder not found: {d}')
    img_suffix = ds.get('img_suffix', '.jpg')
    seg_suffix = ds.get('seg_map_suffix', '.png')
    images = sorted(f for f in os.listdir(img_dir) if f.endswith(img_suffix))
    if not images:
        raise DataError(f'No *{img_suffix} images in {img_dir}')
    labels = [f[:-len(img_suffix)] + seg_suffix for f in images]
    missing = [lb for lb in labels if not osp.isfile(osp.join(seg_dir, lb))]
    if missing:
        raise DataError(f'{len(missing)} label map(s) missing from {seg_dir}: {_short(missing)}')
    if full is None:
        full = len(images) <= FULL_CHECK_LIMIT
    if not full:
        return
    bad = [f for f in images if not _decodes(osp.join(img_dir, f))]
    if bad:
        raise DataError(f'{len(bad)} image(s) in {img_dir} cannot be decoded: {_short(bad)}')
    # Raw ids: 0..num_classes with reduce_zero_label (0 = ignored "other"),
    # else 0..num_classes-1; 255 is always "ignore".
    top = num_classes if ds.get('reduce_zero_label', _reduces_zero(ds)) else num_classes - 1
    out_of_range = []
    for lb in labels:
        seg = cv2.imread(osp.join(seg_dir, lb), cv2.IMREAD_UNCHANGED)
        if seg is None:
            out_of_range.append(f'{lb} (cannot be decoded)')
            continue
        values = np.unique(seg)
        values = values[(values > top) & (values != 255)]
        if values.size:
            out_of_range.append(f'{lb} (values {values.tolist()[:5]})')
    if out_of_range:
        raise DataError(f'{len(out_of_range)} label map(s) in {seg_dir} hold class ids above '
                        f'{top} for {num_classes} classes: {_short(out_of_range)}')


def _reduces_zero(ds: Dict) -> bool:
    for t in ds.get('pipeline', []):
        if t.get('type') == 'LoadAnnotations' and t.get('reduce_zero_label'):
            return True
    return ds.get('type') == 'ADE20KDataset'


def check_data(cfg, dataloader_keys: Iterable[str], full: Optional[bool] = None) -> None:
    """Raise :class:`DataError` for the first problem in these dataloaders' data.

    ``full``: decode images and read label maps too (None: for small datasets)."""
    library = cfg.get('default_scope')
    for key in dataloader_keys:
        loader = cfg.get(key)
        if not loader:
            continue
        for ds in _datasets(loader['dataset']):
            root = ds.get('data_root')
            if root and not osp.isdir(root):
                raise DataError(f'{key}: data root not found: {root}\n'
                                f'{PREPARE_HINT.get(library, "")}')
            try:
                if library == 'mmdet' and ds.get('ann_file'):
                    _check_coco(ds, full)
                elif library == 'mmseg':
                    num_classes = _num_classes(cfg, ds)
                    _check_seg(ds, num_classes, full)
            except DataError as err:
                raise DataError(f'{key}: {err}\n{PREPARE_HINT.get(library, "")}') from None


def _num_classes(cfg, ds: Dict) -> int:
    classes = (ds.get('metainfo') or {}).get('classes')
    if classes:
        return len(classes)
    return cfg.model.decode_head.num_classes
