"""Checks of an mmseg semantic segmentation dataset (ADE20K's layout: images and
label maps in two folders, paired by name).

Every image has its label map; label maps hold one channel and have their
image's size (read from the file headers, so it is cheap); with a full check
each image decodes and each label map holds only known classes.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np

from .common import DataError, decodes, join_root, read_header, short, wants_full_check

def _seg_decode_backend(ds: Dict) -> str:
    for t in ds.get('pipeline', []):
        if t.get('type') == 'LoadAnnotations':
            return t.get('imdecode_backend', 'pillow')
    return 'pillow'


def _check_label_headers(img_dir: str, seg_dir: str, images: List[str], labels: List[str],
                         backend: str) -> None:
    unreadable, multi_channel, wrong_size = [], [], []
    for image, label in zip(images, labels):
        try:
            mode, channels, label_size = read_header(osp.join(seg_dir, label), image=False)
        except (OSError, SyntaxError, ValueError) as err:
            unreadable.append(f'{label} ({err})')
            continue
        if backend == 'cv2' and mode == 'P':
            channels = 3  # cv2 expands palettes to BGR, even with IMREAD_UNCHANGED
        if channels != 1:
            multi_channel.append(f'{label} (mode {mode}, {channels} channels)')
            continue
        try:
            _, _, image_size = read_header(osp.join(img_dir, image), image=True)
        except (OSError, SyntaxError, ValueError):
            continue  # the decode check names undecodable images
        if image_size != label_size:
            wrong_size.append(f'{label} is {label_size[0]}x{label_size[1]}, {image} '
                              f'{image_size[0]}x{image_size[1]}')
    if unreadable:
        raise DataError(f'{len(unreadable)} label map(s) in {seg_dir} cannot be read: '
                        f'{short(unreadable)}')
    if multi_channel:
        raise DataError(f'{len(multi_channel)} label map(s) in {seg_dir} are not one-channel '
                        f'class-id images (save them as 8-bit grayscale or palette PNGs): '
                        f'{short(multi_channel)}')
    if wrong_size:
        raise DataError(f'{len(wrong_size)} label map(s) in {seg_dir} differ in size from '
                        f'their image in {img_dir} (width x height): {short(wrong_size)}')


def check_seg(ds: Dict, num_classes: int, full: Optional[bool], ignore_index: int = 255) -> None:
    """``ignore_index``: the label the loss skips (the decode head's); any
    other label from num_classes up reaches the loss as a class id and fails
    there (IndexError on CPU, a device-side assert on CUDA)."""
    root = ds.get('data_root', '')
    prefix = ds.get('data_prefix', {})
    img_dir = join_root(root, prefix.get('img_path', ''))
    seg_dir = join_root(root, prefix.get('seg_map_path', ''))
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
        raise DataError(f'{len(missing)} label map(s) missing from {seg_dir}: {short(missing)}')
    backend = _seg_decode_backend(ds)
    _check_label_headers(img_dir, seg_dir, images, labels, backend)
    if not wants_full_check(full, len(images)):
        return
    bad = [f for f in images if not decodes(osp.join(img_dir, f))]
    if bad:
        raise DataError(f'{len(bad)} image(s) in {img_dir} cannot be decoded: {short(bad)}')
    # Raw ids: 0..num_classes with reduce_zero_label (0 = the "other" class,
    # which becomes 255), else 0..num_classes-1; plus the ignore index.
    reduce_zero = ds.get('reduce_zero_label', _reduces_zero(ds))
    top = num_classes if reduce_zero else num_classes - 1
    from mmcv import imfrombytes  # mmseg's own reader; mmcv is there when mmseg is
    out_of_range = []
    for lb in labels:
        with open(osp.join(seg_dir, lb), 'rb') as f:
            data = f.read()
        try:  # as mmseg's LoadAnnotations reads it
            seg = imfrombytes(data, flag='unchanged', backend=backend)
        except Exception:  # noqa: BLE001  each decoder raises its own kind
            seg = None
        if seg is None:
            out_of_range.append(f'{lb} (cannot be decoded)')
            continue
        values = np.unique(seg)
        values = values[~_trainable(values, num_classes, ignore_index, reduce_zero)]
        if values.size:
            out_of_range.append(f'{lb} (values {values.tolist()[:5]})')
    if out_of_range:
        note = ''
        if ignore_index != 255:
            note = f' (the ignore index is {ignore_index}'
            note += (': reduce_zero_label turns raw 0 and 255 into 255, which the loss '
                     'ignores only with ignore_index=255)' if reduce_zero else ')')
        raise DataError(f'{len(out_of_range)} label map(s) in {seg_dir} hold class ids above '
                        f'{top} for {num_classes} classes: {short(out_of_range)}{note}')


def _trainable(raw: np.ndarray, num_classes: int, ignore_index: int,
               reduce_zero: bool) -> np.ndarray:
    """Which raw label values the loss accepts, after mmseg's LoadAnnotations
    (reduce_zero_label: 0 -> 255, then v -> v - 1, with 255 staying 255)."""
    labels = raw.astype(np.int64)
    if reduce_zero:
        labels = np.where((labels == 0) | (labels == 255), 255, labels - 1)
    return (labels < num_classes) | (labels == ignore_index)


def _reduces_zero(ds: Dict) -> bool:
    for t in ds.get('pipeline', []):
        if t.get('type') == 'LoadAnnotations' and t.get('reduce_zero_label'):
            return True
    return ds.get('type') == 'ADE20KDataset'
