"""Checks of a COCO-layout detection dataset, as mmdet's CocoDataset reads it.

JSON structure (each malformed entry named by index and key), references
(category and image ids that the file does not define, duplicate ids), the
config's classes against the file's categories, the annotations mmdet would
skip (boxes under 1 px, zero area, outside the image): a few are a warning,
most of a file an error; instance masks as mmdet's LoadAnnotations reads them
(polygons of 3+ points with paired coordinates, RLE size and run lengths
against the image; every instance has one when the pipeline loads masks);
then every image the file names, its size against its header (decoded too
when the check is full).
"""
import json
import math
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional, Tuple

from .common import DataError, brief, decodes, join_root, read_header, short, wants_full_check

# A file whose annotations mmdet would mostly skip is refused: above this
# share the data is broken (e.g. xyxy boxes stored as xywh), below it the
# skipped ones are a warning (real COCO has a few boxes under 1 px).
MAX_SKIPPED_SHARE = 0.5
_NUMBER = (int, float)


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
        return '', f'is {brief(entry)}, not an object'
    required = {'images': ('id', 'file_name', 'height', 'width'),
                'categories': ('id', 'name'),
                'annotations': ('id', 'image_id', 'category_id', 'bbox', 'area')}[section]
    for key in required:
        if key not in entry:
            return key, 'missing'
    for key in ('id', 'image_id', 'category_id'):
        if key in required and isinstance(entry[key], (list, dict)):
            return key, f'{brief(entry[key])} is not an id (integer or string)'
    if section == 'images':
        if not isinstance(entry['file_name'], str) or not entry['file_name']:
            return 'file_name', f'{brief(entry["file_name"])} is not a file name'
        for key in ('height', 'width'):
            if not (type(entry[key]) in _NUMBER and 0 < entry[key] < math.inf):
                return key, f'{brief(entry[key])} is not a positive number'
    elif section == 'categories':
        if not isinstance(entry['name'], str):
            return 'name', f'{brief(entry["name"])} is not a string'
    else:
        box = entry['bbox']
        if not (isinstance(box, list) and len(box) == 4
                and all(type(v) in _NUMBER and math.isfinite(v) for v in box)):
            return 'bbox', f'{brief(box)} is not 4 finite numbers [x, y, width, height]'
        if not (type(entry['area']) in _NUMBER and math.isfinite(entry['area'])):
            return 'area', f'{brief(entry["area"])} is not a finite number'
    return '', 'malformed'


def _malformed(path: str, problems: List[Tuple[str, int, str, str]]) -> DataError:
    """One error for all malformed entries: counts per key, then the first few."""
    counts = Counter(f'{section}[*]' + (f"['{key}']" if key else '')
                     for section, _, key, _ in problems)
    where = [f'{section}[{i}]' + (f"['{key}']" if key else '') + f': {what}'
             for section, i, key, what in problems]
    return DataError(f'{len(problems)} malformed entr{"y" if len(problems) == 1 else "ies"} in '
                     f'{path} ({", ".join(f"{k}: {n}" for k, n in counts.items())}): '
                     + short(where, sep='; '))


def _section(coco: Dict, key: str, path: str, required: bool) -> list:
    if key not in coco:
        if required:
            raise DataError(f"Annotation file has no '{key}' list: {path}")
        return []
    if not isinstance(coco[key], list):
        raise DataError(f"'{key}' in {path} is {brief(coco[key])}, not a list")
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


def loads_masks(ds: Dict) -> bool:
    """Whether the dataset's pipeline loads instance masks (LoadAnnotations
    with with_mask, at any depth: RandomChoice, TestTimeAug, ...)."""
    def walk(node) -> bool:
        if isinstance(node, dict):
            kind = node.get('type')
            if getattr(kind, '__name__', kind) == 'LoadAnnotations' and node.get('with_mask'):
                return True
            return any(walk(v) for v in node.values())
        if isinstance(node, (list, tuple)):
            return any(walk(v) for v in node)
        return False
    return walk(ds.get('pipeline', []))


def _rle_string_total(counts: str) -> Optional[int]:
    """The pixels a compressed COCO RLE string covers (its run lengths
    decoded as pycocotools' rleFrString does), None if it is malformed."""
    runs: List[int] = []
    p, n = 0, len(counts)
    while p < n:
        x = k = 0
        while True:
            if p >= n:
                return None  # the last run is cut off
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                return None
            x |= (c & 0x1f) << (5 * k)
            p, k = p + 1, k + 1
            if not c & 0x20:
                if c & 0x10:
                    x |= -1 << (5 * k)
                break
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            return None
        runs.append(x)
    return sum(runs)


def _polygon_problems(polygons: list) -> Tuple[List[str], bool]:
    """(problems, whether mmdet is left without a mask) of a polygon list, as
    mmdet's LoadAnnotations reads it: it drops polygons with fewer than 3
    points or an odd number of coordinates, and ignores the instance when
    none is left; a non-number crashes it."""
    problems, kept = [], 0
    for j, poly in enumerate(polygons):
        if not isinstance(poly, list):
            hint = (' (a flat [x1, y1, x2, y2, ...] list must be wrapped in another list)'
                    if type(poly) in _NUMBER else '')
            return [f'polygon {j} is {brief(poly)}, not a list of coordinates{hint}'], True
        try:
            finite = math.isfinite(sum(poly))  # C speed: COCO has ~1M polygons
        except TypeError:
            finite = False
        if not finite:
            return [f'polygon {j} holds something other than finite numbers: '
                    f'{brief(poly)}'], True
        if len(poly) % 2:
            return [f'polygon {j} has an odd number of coordinates ({len(poly)})'], True
        if len(poly) < 6:
            problems.append(f'polygon {j} has {len(poly) // 2} point(s), fewer than 3')
        else:
            kept += 1
    return problems, kept == 0


def _rle_problem(rle: dict, width, height) -> Optional[str]:
    if 'counts' not in rle or 'size' not in rle:
        return f"RLE {brief(rle)} lacks 'counts' or 'size'"
    size, counts = rle['size'], rle['counts']
    if not (isinstance(size, list) and len(size) == 2 and all(type(v) is int for v in size)):
        return f"RLE size {brief(size)} is not [height, width]"
    if size != [height, width]:
        return (f'RLE size {size} (height, width) is not its image\'s [{height:g}, {width:g}] '
                'from images[]')
    pixels = size[0] * size[1]
    if isinstance(counts, str):
        total = _rle_string_total(counts)
        if total is None:
            return f'RLE counts {brief(counts)} is not a valid compressed RLE string'
    elif isinstance(counts, list):
        if not all(type(v) is int for v in counts) or (counts and min(counts) < 0):
            return f'RLE counts {brief(counts)} are not non-negative integers'
        total = sum(counts)
    else:
        return f'RLE counts {brief(counts)} is neither a list nor a string'
    if total != pixels:
        return f'RLE counts cover {total} pixels, its size {size} has {pixels}'
    return None


def _mask_problems(segmentation, width, height, need_mask: bool) -> Tuple[List[str], bool]:
    """(problems, whether they stop training or leave the instance maskless)
    of an annotation's 'segmentation', for an image of this size."""
    if not segmentation:  # mmdet then gives the instance no mask: KeyError: 'mask'
        return (['no mask (segmentation missing or empty)'], True) if need_mask else ([], False)
    if isinstance(segmentation, list):
        return _polygon_problems(segmentation)
    if isinstance(segmentation, dict):
        problem = _rle_problem(segmentation, width, height)
        return ([problem], True) if problem else ([], False)
    return [f'segmentation {brief(segmentation)} is neither polygons nor an RLE dict'], True


def _examples(annotations: list, indices: List[int], limit: int = 3) -> str:
    more = f' ... (+{len(indices) - limit} more)' if len(indices) > limit else ''
    return ', '.join(f'annotations[{i}] (id {annotations[i]["id"]!r}, bbox '
                     f'{annotations[i]["bbox"]})' for i in indices[:limit]) + more


def _check_coco_annotations(coco, ann: str, classes: Optional[Tuple[str, ...]],
                            training: bool, masks: bool = False) -> Tuple[list, List[str]]:
    """Check a COCO dict as mmdet's CocoDataset will read it.

    Raises DataError for malformed entries and broken references; returns the
    images and the warnings. One pass over each section, a few microseconds an
    annotation: COCO train2017's size takes seconds, less than json.load.
    ``masks``: the pipeline loads instance masks, so each instance needs one;
    masks that are there are checked either way."""
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
    bad_masks, dropped_polygons = [], []  # (index, problems)
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
            else:
                segmentation = a.get('segmentation')
                if segmentation or masks:
                    problems, fatal = _mask_problems(segmentation, *size, masks)
                    if problems:
                        (bad_masks if fatal else dropped_polygons).append((i, problems))
    if malformed:
        raise _malformed(ann, malformed)

    errors = []
    if unknown_categories:
        counts = [f'id {c!r} ({n}x)' for c, n in unknown_categories.most_common()]
        errors.append(f'{sum(unknown_categories.values())} annotation(s) have category ids '
                      f"missing from 'categories' (which defines {short([repr(c) for c in names])}"
                      f'): {short(counts)}')
    if unknown_images:
        counts = [f'id {c!r} ({n}x)' for c, n in unknown_images.most_common()]
        errors.append(f'{sum(unknown_images.values())} annotation(s) have image ids missing '
                      f"from 'images': {short(counts)}")
    duplicate_anns = {}
    if not malformed and len(ann_ids) < len(annotations):  # rare: find them
        duplicate_anns = {k: n for k, n in Counter(a['id'] for a in annotations).items() if n > 1}
    for what, dups in (('image', duplicate_images), ('annotation', duplicate_anns)):
        if dups:
            errors.append(f'{len(dups)} {what} id(s) are used more than once: '
                          f'{short([repr(d) for d in dups])}')
    warned = []
    if classes is not None:
        missing = [c for c in classes if c not in names.values()]
        if missing:
            errors.append(f"{len(missing)} of the config's {len(classes)} classes are not "
                          f"among the file's categories: {short([repr(c) for c in missing])} "
                          f"(the file has {short([repr(n) for n in names.values()])}); set "
                          "the dataset's metainfo=dict(classes=...) to the file's names")
        else:
            in_file_order = tuple(n for n in names.values() if n in classes)
            if in_file_order != classes:
                warned.append("the config's classes are in another order than the file's "
                              "categories; mmdet numbers labels in the file's order, so "
                              'drawings and predictions will name the wrong classes: file '
                              f'{in_file_order}, config {classes}')
    if bad_masks:
        errors.append(f'{len(bad_masks)} annotation(s) have a mask mmdet cannot use (it would '
                      'crash, or train the box with an empty mask): '
                      + _mask_examples(annotations, bad_masks))
    if dropped_polygons:
        warned.append(f'{len(dropped_polygons)} annotation(s) have polygons mmdet drops (the '
                      'rest of their mask is kept): '
                      + _mask_examples(annotations, dropped_polygons))
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


def _mask_examples(annotations: list, found: List[Tuple[int, List[str]]]) -> str:
    return short([f'annotations[{i}] (id {annotations[i]["id"]!r}): {", ".join(problems)}'
                  for i, problems in found], sep='; ')


def _check_image_sizes(images: list, prefix: str, ann: str) -> None:
    """images[].width/height against each file's header (EXIF orientation
    applied, as mmcv loads it): mmdet filters boxes and the metric scores
    masks at the json's size, but draws polygons at the image's."""
    wrong = []
    for i, im in enumerate(images):
        try:
            path = osp.join(prefix, im['file_name'])
            _, _, (width, height) = read_header(path, image=True)
            json_size = (im['width'] + 0, im['height'] + 0)
        except (OSError, SyntaxError, ValueError, KeyError, TypeError):
            continue  # the structure, existence and decode checks name these
        if (width, height) != json_size:
            wrong.append(f'images[{i}] (id {im.get("id")!r}, {im["file_name"]}): file '
                         f'{width}x{height}, json {im["width"]:g}x{im["height"]:g}')
    if wrong:
        raise DataError(f'{ann}: {len(wrong)} image(s) differ in size from their file in '
                        f'{prefix} (width x height): {short(wrong, sep="; ")}')


def check_coco(ds: Dict, full: Optional[bool], training: bool) -> List[str]:
    root = ds.get('data_root', '')
    ann = join_root(root, ds['ann_file'])
    if not osp.isfile(ann):
        raise DataError(f'Annotation file not found: {ann}')
    if osp.getsize(ann) == 0:
        raise DataError(f'Annotation file is empty: {ann}')
    coco = _read_json(ann)
    dataset_class = _coco_class(ds)
    prefix = join_root(root, ds.get('data_prefix', {}).get('img', ''))
    if _reads_like_coco(dataset_class):
        # first: a wrong size in images[] would otherwise show as bad RLE sizes
        if isinstance(coco, dict) and isinstance(coco.get('images'), list):
            _check_image_sizes(coco['images'], prefix, ann)
        images, warned = _check_coco_annotations(coco, ann, _config_classes(ds, dataset_class),
                                                 training, loads_masks(ds))
    else:  # another layout (LVIS, Objects365, ...): check the images it names, if we can
        images, warned = coco.get('images') if isinstance(coco, dict) else None, []
        if not isinstance(images, list) or not all(
                isinstance(im, dict) and isinstance(im.get('file_name'), str) for im in images):
            return warned
    missing = [im['file_name'] for im in images
               if not osp.isfile(osp.join(prefix, im['file_name']))]
    if missing:
        raise DataError(f'{len(missing)} image(s) named in {ann} are not in {prefix}: '
                        f'{short(missing)}')
    if wants_full_check(full, len(images)):
        bad = [im['file_name'] for im in images if not decodes(osp.join(prefix, im['file_name']))]
        if bad:
            raise DataError(f'{len(bad)} image(s) in {prefix} cannot be decoded: {short(bad)}')
    return warned
