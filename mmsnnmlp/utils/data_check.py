"""Pre-flight checks of a config's datasets, with errors that say what and where.

mmdet/mmseg only notice a missing folder or image when a dataloader worker
trips over it, deep inside mmcv, and they drop some bad annotations without a
word. We look first, on every dataset:

* COCO files: JSON structure (each malformed entry named by index and key),
  references (category and image ids that the file does not define, duplicate
  ids), the config's classes against the file's categories, and the
  annotations mmdet would skip (boxes under 1 px, zero area, outside the
  image): a few are a :class:`DataWarning`, most of a file an error;
* every image an annotation names and every label map an image needs;
* label maps hold one channel and have their image's size (read from the
  file headers, so it is cheap).

With ``full=True`` (by default for datasets of up to ``FULL_CHECK_LIMIT``
images) also that each image decodes and each label map holds only known
classes.
"""
import json
import math
import os
import os.path as osp
import warnings
from collections import Counter
from typing import Dict, Iterable, List, Optional, Tuple

import cv2
import numpy as np
from PIL import Image

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
# this many images; bigger ones get the structure and header checks only.
FULL_CHECK_LIMIT = 2000
# A file whose annotations mmdet would mostly skip is refused: above this
# share the data is broken (e.g. xyxy boxes stored as xywh), below it the
# skipped ones are a warning (real COCO has a few boxes under 1 px).
MAX_SKIPPED_SHARE = 0.5
_NUMBER = (int, float)


class DataError(RuntimeError):
    """A dataset problem found before training or testing starts."""


class DataWarning(UserWarning):
    """A dataset oddity that training survives, which the user should know about."""


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


def _short(items: List[str], limit: int = 5, sep: str = ', ') -> str:
    more = f' ... (+{len(items) - limit} more)' if len(items) > limit else ''
    return sep.join(items[:limit]) + more


def _brief(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _decodes(path: str) -> bool:
    return cv2.imread(path, cv2.IMREAD_UNCHANGED) is not None


# --------------------------------------------------------------------- COCO


def _read_json(path: str):
    # pycocotools reads the file as text; so do we, to fail where it would.
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except UnicodeDecodeError as err:
        raise DataError(f'Annotation file is not UTF-8 text: {path} (byte {err.start}: '
                        f'{err.reason})') from None
    except json.JSONDecodeError as err:
        raise DataError(f'Annotation file is not valid JSON: {path} ({err})') from None


def _entry_problem(entry, section: str) -> Tuple[str, str]:
    """(key, what is wrong) for an entry that failed the fast checks."""
    if not isinstance(entry, dict):
        return '', f'is {_brief(entry)}, not an object'
    required = {'images': ('id', 'file_name', 'height', 'width'),
                'categories': ('id', 'name'),
                'annotations': ('id', 'image_id', 'category_id', 'bbox', 'area')}[section]
    for key in required:
        if key not in entry:
            return key, 'missing'
    for key in ('id', 'image_id', 'category_id'):
        if key in required and isinstance(entry[key], (list, dict)):
            return key, f'{_brief(entry[key])} is not an id (integer or string)'
    if section == 'images':
        if not isinstance(entry['file_name'], str) or not entry['file_name']:
            return 'file_name', f'{_brief(entry["file_name"])} is not a file name'
        for key in ('height', 'width'):
            if not (type(entry[key]) in _NUMBER and 0 < entry[key] < math.inf):
                return key, f'{_brief(entry[key])} is not a positive number'
    elif section == 'categories':
        if not isinstance(entry['name'], str):
            return 'name', f'{_brief(entry["name"])} is not a string'
    else:
        box = entry['bbox']
        if not (isinstance(box, list) and len(box) == 4
                and all(type(v) in _NUMBER and math.isfinite(v) for v in box)):
            return 'bbox', f'{_brief(box)} is not 4 finite numbers [x, y, width, height]'
        if not (type(entry['area']) in _NUMBER and math.isfinite(entry['area'])):
            return 'area', f'{_brief(entry["area"])} is not a finite number'
    return '', 'malformed'


def _malformed(path: str, problems: List[Tuple[str, int, str, str]]) -> DataError:
    """One error for all malformed entries: counts per key, then the first few."""
    counts = Counter(f'{section}[*]' + (f"['{key}']" if key else '')
                     for section, _, key, _ in problems)
    where = [f'{section}[{i}]' + (f"['{key}']" if key else '') + f': {what}'
             for section, i, key, what in problems]
    return DataError(f'{len(problems)} malformed entr{"y" if len(problems) == 1 else "ies"} in '
                     f'{path} ({", ".join(f"{k}: {n}" for k, n in counts.items())}): '
                     + _short(where, sep='; '))


def _section(coco: Dict, key: str, path: str, required: bool) -> list:
    if key not in coco:
        if required:
            raise DataError(f"Annotation file has no '{key}' list: {path}")
        return []
    if not isinstance(coco[key], list):
        raise DataError(f"'{key}' in {path} is {_brief(coco[key])}, not a list")
    return coco[key]


def _coco_class(ds: Dict):
    """The dataset class a config names, or None where mmdet cannot resolve it."""
    kind = ds.get('type', 'CocoDataset')
    if not isinstance(kind, str):
        return kind
    try:
        from mmdet.registry import DATASETS
        return DATASETS.get(kind)
    except Exception:  # noqa: BLE001  no mmdet, or a type from an unimported plugin
        return None


def _reads_like_coco(dataset_class) -> bool:
    """Whether mmdet parses this dataset's file exactly as CocoDataset does,
    the rules these checks mirror (LVIS, Objects365, ... have their own)."""
    if dataset_class is None:
        return True  # unknown: a COCO-layout file is by far the common case
    from mmdet.datasets import CocoDataset
    return (isinstance(dataset_class, type) and issubclass(dataset_class, CocoDataset)
            and dataset_class.load_data_list is CocoDataset.load_data_list
            and dataset_class.parse_data_info is CocoDataset.parse_data_info)


def _config_classes(ds: Dict, dataset_class) -> Optional[Tuple[str, ...]]:
    classes = (ds.get('metainfo') or {}).get('classes')
    if not classes and dataset_class is not None:
        classes = (getattr(dataset_class, 'METAINFO', None) or {}).get('classes')
    return tuple(classes) if classes else None


def _examples(annotations: list, indices: List[int], limit: int = 3) -> str:
    more = f' ... (+{len(indices) - limit} more)' if len(indices) > limit else ''
    return ', '.join(f'annotations[{i}] (id {annotations[i]["id"]!r}, bbox '
                     f'{annotations[i]["bbox"]})' for i in indices[:limit]) + more


def _check_coco_annotations(coco, ann: str, classes: Optional[Tuple[str, ...]],
                            training: bool) -> Tuple[list, List[str]]:
    """Check a COCO dict as mmdet's CocoDataset will read it.

    Raises DataError for malformed entries and broken references; returns the
    images and the warnings. One pass over each section, a few microseconds an
    annotation: COCO train2017's size takes seconds, less than json.load."""
    if not isinstance(coco, dict):
        raise DataError(f'Annotation file holds {type(coco).__name__}, not a COCO object '
                        f'with images, annotations and categories: {ann}')
    images = _section(coco, 'images', ann, required=True)
    if not images:
        raise DataError(f'Annotation file lists no images: {ann}')
    categories = _section(coco, 'categories', ann, required=True)
    annotations = _section(coco, 'annotations', ann, required=False)

    malformed = []
    image_size = {}
    duplicate_images = Counter()
    for i, im in enumerate(images):
        try:
            image_id, name, w, h = im['id'], im['file_name'], im['width'], im['height']
            good = (not isinstance(image_id, (list, dict)) and type(name) is str and name != ''
                    and type(w) in _NUMBER and type(h) in _NUMBER
                    and 0 < w < math.inf and 0 < h < math.inf)
        except (KeyError, TypeError):
            good = False
        if not good:
            malformed.append(('images', i, *_entry_problem(im, 'images')))
        elif image_id in image_size:
            duplicate_images[image_id] += 1
        else:
            image_size[image_id] = (w, h)
    names = {}
    for i, cat in enumerate(categories):
        try:
            good = isinstance(cat['name'], str) and not isinstance(cat['id'], (list, dict))
        except (KeyError, TypeError):
            good = False
        if good:
            names[cat['id']] = cat['name']
        else:
            malformed.append(('categories', i, *_entry_problem(cat, 'categories')))

    wanted = set(names) if classes is None else {c for c, n in names.items() if n in classes}
    unknown_categories = Counter()
    unknown_images = Counter()
    ann_ids = set()
    skipped = {'negative width or height': [], 'width or height below 1 pixel': [],
               'area <= 0': [], 'box outside its image': []}
    used = 0  # annotations of the config's classes, not marked 'ignore'
    # bound methods and locals: this loop runs once per annotation (860k on COCO)
    isfinite, size_of, add_id = math.isfinite, image_size.get, ann_ids.add
    for i, a in enumerate(annotations):
        try:  # the fast path: any non-number, unhashable id or missing key raises
            box = a['bbox']
            x, y, w, h = box
            area = a['area']
            if type(box) is not list or not isfinite(x + y + w + h + area):
                raise ValueError
            category, image = a['category_id'], a['image_id']
            add_id(a['id'])
            known = category in names
            size = size_of(image)
        except (KeyError, TypeError, ValueError):
            malformed.append(('annotations', i, *_entry_problem(a, 'annotations')))
            continue
        if not known:
            unknown_categories[category] += 1
        elif size is None:
            unknown_images[image] += 1
        elif category in wanted and not a.get('ignore'):
            used += 1
            # the filters of mmdet's CocoDataset.parse_data_info, named
            if w < 1 or h < 1:
                reason = 'negative width or height' if w < 0 or h < 0 else \
                    'width or height below 1 pixel'
                skipped[reason].append(i)
            elif area <= 0:
                skipped['area <= 0'].append(i)
            elif x + w <= 0 or y + h <= 0 or x >= size[0] or y >= size[1]:
                skipped['box outside its image'].append(i)
    if malformed:
        raise _malformed(ann, malformed)

    errors = []
    if unknown_categories:
        counts = [f'id {c!r} ({n}x)' for c, n in unknown_categories.most_common()]
        errors.append(f'{sum(unknown_categories.values())} annotation(s) have category ids '
                      f"missing from 'categories' (which defines {_short([repr(c) for c in names])}"
                      f'): {_short(counts)}')
    if unknown_images:
        counts = [f'id {c!r} ({n}x)' for c, n in unknown_images.most_common()]
        errors.append(f'{sum(unknown_images.values())} annotation(s) have image ids missing '
                      f"from 'images': {_short(counts)}")
    duplicate_anns = {}
    if not malformed and len(ann_ids) < len(annotations):  # rare: find them
        duplicate_anns = {k: n for k, n in Counter(a['id'] for a in annotations).items() if n > 1}
    for what, dups in (('image', duplicate_images), ('annotation', duplicate_anns)):
        if dups:
            errors.append(f'{len(dups)} {what} id(s) are used more than once: '
                          f'{_short([repr(d) for d in dups])}')
    warned = []
    if classes is not None:
        missing = [c for c in classes if c not in names.values()]
        if missing:
            errors.append(f"{len(missing)} of the config's {len(classes)} classes are not "
                          f"among the file's categories: {_short([repr(c) for c in missing])} "
                          f"(the file has {_short([repr(n) for n in names.values()])}); set "
                          "the dataset's metainfo=dict(classes=...) to the file's names")
        else:
            in_file_order = tuple(n for n in names.values() if n in classes)
            if in_file_order != classes:
                warned.append("the config's classes are in another order than the file's "
                              "categories; mmdet numbers labels in the file's order, so "
                              'drawings and predictions will name the wrong classes: file '
                              f'{in_file_order}, config {classes}')
    dropped = sum(len(v) for v in skipped.values())
    if used and dropped:
        parts = '; '.join(f'{len(v)} with {reason} ({_examples(annotations, v)})'
                          for reason, v in skipped.items() if v)
        message = f'{dropped} of {used} annotation(s) would be skipped by mmdet: {parts}'
        if dropped > MAX_SKIPPED_SHARE * used:
            errors.append(message)
        else:
            warned.append(message)
    elif training and not used and not errors:
        errors.append('no annotation of the config\'s classes: nothing to train on')
    if errors:
        raise DataError(f'{ann}: ' + '\n  '.join(errors))
    return images, [f'{ann}: {w}' for w in warned]


def _check_coco(ds: Dict, full: Optional[bool], training: bool) -> List[str]:
    root = ds.get('data_root', '')
    ann = _join(root, ds['ann_file'])
    if not osp.isfile(ann):
        raise DataError(f'Annotation file not found: {ann}')
    if osp.getsize(ann) == 0:
        raise DataError(f'Annotation file is empty: {ann}')
    coco = _read_json(ann)
    dataset_class = _coco_class(ds)
    if _reads_like_coco(dataset_class):
        images, warned = _check_coco_annotations(coco, ann, _config_classes(ds, dataset_class),
                                                 training)
    else:  # another layout (LVIS, Objects365, ...): check the images it names, if we can
        images, warned = coco.get('images') if isinstance(coco, dict) else None, []
        if not isinstance(images, list) or not all(
                isinstance(im, dict) and isinstance(im.get('file_name'), str) for im in images):
            return warned
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
    return warned


# ----------------------------------------------------------- semantic seg

# EXIF orientations that swap width and height; mmcv's default (cv2) image
# loading applies them, label maps are read unrotated.
_TRANSPOSING = {5, 6, 7, 8}


def _header(path: str, image: bool) -> Tuple[str, int, Tuple[int, int]]:
    """(PIL mode, channels, (width, height) as the pipeline will see it), read
    from the header only."""
    with Image.open(path) as im:
        width, height = im.size
        # JPEG EXIF is parsed on open; other formats would need a decode
        if (image and im.format == 'JPEG' and 'exif' in im.info
                and im.getexif().get(0x0112) in _TRANSPOSING):
            width, height = height, width
        return im.mode, len(im.getbands()), (width, height)


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
            mode, channels, label_size = _header(osp.join(seg_dir, label), image=False)
        except (OSError, SyntaxError, ValueError) as err:
            unreadable.append(f'{label} ({err})')
            continue
        if backend == 'cv2' and mode == 'P':
            channels = 3  # cv2 expands palettes to BGR, even with IMREAD_UNCHANGED
        if channels != 1:
            multi_channel.append(f'{label} (mode {mode}, {channels} channels)')
            continue
        try:
            _, _, image_size = _header(osp.join(img_dir, image), image=True)
        except (OSError, SyntaxError, ValueError):
            continue  # the decode check names undecodable images
        if image_size != label_size:
            wrong_size.append(f'{label} is {label_size[0]}x{label_size[1]}, {image} '
                              f'{image_size[0]}x{image_size[1]}')
    if unreadable:
        raise DataError(f'{len(unreadable)} label map(s) in {seg_dir} cannot be read: '
                        f'{_short(unreadable)}')
    if multi_channel:
        raise DataError(f'{len(multi_channel)} label map(s) in {seg_dir} are not one-channel '
                        f'class-id images (save them as 8-bit grayscale or palette PNGs): '
                        f'{_short(multi_channel)}')
    if wrong_size:
        raise DataError(f'{len(wrong_size)} label map(s) in {seg_dir} differ in size from '
                        f'their image in {img_dir} (width x height): {_short(wrong_size)}')


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
    backend = _seg_decode_backend(ds)
    _check_label_headers(img_dir, seg_dir, images, labels, backend)
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
    """Raise :class:`DataError` for the problems in these dataloaders' data;
    issue a :class:`DataWarning` for the ones training survives.

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
            warned = []
            try:
                if library == 'mmdet' and ds.get('ann_file'):
                    warned = _check_coco(ds, full, training=key.startswith('train'))
                elif library == 'mmseg':
                    num_classes = _num_classes(cfg, ds)
                    _check_seg(ds, num_classes, full)
            except DataError as err:
                raise DataError(f'{key}: {err}\n{PREPARE_HINT.get(library, "")}') from None
            for message in warned:
                warnings.warn(f'{key}: {message}', DataWarning, stacklevel=2)


def _num_classes(cfg, ds: Dict) -> int:
    classes = (ds.get('metainfo') or {}).get('classes')
    if classes:
        return len(classes)
    return cfg.model.decode_head.num_classes
