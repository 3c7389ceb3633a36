"""COCO instance masks and image sizes at the data check: each kind of bad
mask that mmdet would crash on mid-training, or silently turn into an
ignored instance, is named (json, annotation index and id, the problem)
before any model is built."""
import importlib.util
import json
import math
import os.path as osp
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from mmsnnmlp.datasets import DataError, DataWarning, check_data
from mmsnnmlp.datasets.coco import _rle_string_total

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLASSES = ('circle', 'square', 'triangle')
SIZE = 48
ANN = 'annotations/instances_train2017.json'


@pytest.fixture(scope='module')
def pristine(tmp_path_factory):
    out = tmp_path_factory.mktemp('coco_masks') / 'toy'
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                    str(out), '--num-train', '4', '--num-val', '1', '--size', str(SIZE),
                    '--rle-every', '2'], check=True, capture_output=True)
    return out / 'coco'


@pytest.fixture()
def coco(tmp_path, pristine):
    shutil.copytree(pristine, tmp_path / 'coco')
    return tmp_path / 'coco'


def _cfg(root, with_mask=True):
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask),
                dict(type='PackDetInputs')]
    return Config(dict(default_scope='mmdet', train_dataloader=dict(dataset=dict(
        type='CocoDataset', data_root=str(root), ann_file=ANN, data_prefix=dict(img='train2017/'),
        metainfo=dict(classes=CLASSES), pipeline=pipeline))))


def _check(root, with_mask=True):
    check_data(_cfg(root, with_mask), ['train_dataloader'], full=False)


def _edit(root, edit):
    path = root / ANN
    coco = json.loads(path.read_text())
    result = edit(coco)
    path.write_text(json.dumps(coco))
    return result


def _first(coco, kind):
    """(index, annotation) of the first polygon (kind=list) or RLE (dict) annotation."""
    return next((i, a) for i, a in enumerate(coco['annotations'])
                if isinstance(a.get('segmentation'), kind))


def _set_polygons(polygons):
    def edit(coco):
        i, a = _first(coco, list)
        a['segmentation'] = polygons
        return i, a['id']
    return edit


def _set_rle(**changes):
    def edit(coco):
        i, a = _first(coco, dict)
        for key, value in changes.items():
            if value is None:
                del a['segmentation'][key]
            else:
                a['segmentation'][key] = value
        return i, a['id']
    return edit


def _remove_segmentation(coco):
    i, a = _first(coco, list)
    del a['segmentation']
    return i, a['id']


BAD_MASKS = {
    'two_points': (_set_polygons([[1, 1, 20, 20]]), r'polygon 0 has 2 point\(s\), fewer than 3'),
    'one_point': (_set_polygons([[5, 5]]), r'polygon 0 has 1 point\(s\), fewer than 3'),
    'odd_coordinates': (_set_polygons([[1, 1, 20, 1, 20]]),
                        r'polygon 0 has an odd number of coordinates \(5\)'),
    'odd_beside_a_good_polygon': (_set_polygons([[1, 1, 20, 1, 20, 20], [1, 1, 20]]),
                                  r'polygon 1 has an odd number of coordinates \(3\)'),
    'empty_polygon_list': (_set_polygons([]), r'no mask \(segmentation missing or empty\)'),
    'no_segmentation': (_remove_segmentation, r'no mask \(segmentation missing or empty\)'),
    'flat_list': (_set_polygons([1, 1, 20, 1, 20, 20]),
                  r'polygon 0 is 1, not a list of coordinates \(a flat'),
    'words_for_coordinates': (_set_polygons([['1', '1', '20', '1', '20', '20']]),
                              r'polygon 0 holds something other than finite numbers'),
    'nan_coordinate': (_set_polygons([[1, 1, 20, math.nan, 20, 20]]),
                       r'polygon 0 holds something other than finite numbers'),
    'not_a_mask': (_set_polygons('circle'), r"segmentation 'circle' is neither polygons nor"),
    'rle_size_not_the_image': (_set_rle(size=[SIZE + 1, SIZE]),
                               rf"RLE size \[{SIZE + 1}, {SIZE}\] \(height, width\) is not its "
                               rf"image's \[{SIZE}, {SIZE}\]"),
    'rle_size_malformed': (_set_rle(size=[SIZE]), r'RLE size \[48\] is not \[height, width\]'),
    'rle_without_counts': (_set_rle(counts=None), r"RLE .* lacks 'counts' or 'size'"),
    'rle_counts_short': (_set_rle(counts=[100, 5]),
                         rf'RLE counts cover 105 pixels, its size \[{SIZE}, {SIZE}\] has '
                         rf'{SIZE * SIZE}'),
    'rle_counts_negative': (_set_rle(counts=[-1, SIZE * SIZE + 1]),
                            r'RLE counts \[-1, 2305\] are not non-negative integers'),
    'rle_string_garbage': (_set_rle(counts='~~~~'),
                           r"RLE counts '~~~~' is not a valid compressed RLE string"),
    'rle_string_cut': (_set_rle(counts='0'), r'RLE counts cover 0 pixels'),
}


@pytest.mark.parametrize('kind', sorted(BAD_MASKS))
def test_bad_mask_is_named(coco, kind):
    edit, problem = BAD_MASKS[kind]
    index, ann_id = _edit(coco, edit)
    with pytest.raises(DataError) as err:
        _check(coco)
    message = str(err.value)
    assert 'train_dataloader: ' in message and osp.join(str(coco), ANN) in message, message
    assert re.search(
        rf'1 annotation\(s\) have a mask mmdet cannot use .*: annotations\[{index}\] '
        rf'\(id {ann_id}\): {problem}', message), message


def test_the_toy_masks_pass_with_both_kinds_there(coco):
    coco_json = json.loads((coco / ANN).read_text())
    kinds = {type(a['segmentation']) for a in coco_json['annotations']}
    assert kinds == {list, dict}
    with warnings.catch_warnings():
        warnings.simplefilter('error', DataWarning)
        _check(coco)


def test_a_dropped_polygon_beside_a_good_one_is_a_warning(coco):
    """mmdet drops the short polygon and keeps the rest of the mask."""
    index, ann_id = _edit(coco, _set_polygons([[1, 1, 20, 1, 20, 20], [3, 3, 9, 9]]))
    with pytest.warns(DataWarning, match=rf'1 annotation\(s\) have polygons mmdet drops .*'
                                         rf'annotations\[{index}\] \(id {ann_id}\): polygon 1 has '
                                         r'2 point\(s\)'):
        _check(coco)


def test_no_masks_needed_without_with_mask(coco):
    """A box-only pipeline trains on annotations without segmentation."""
    _edit(coco, _remove_segmentation)
    _edit(coco, _set_polygons([]))
    _check(coco, with_mask=False)
    with pytest.raises(DataError, match='no mask'):
        _check(coco, with_mask=True)


def test_broken_masks_are_named_even_without_with_mask(coco):
    _edit(coco, _set_rle(size=[SIZE + 1, SIZE]))
    with pytest.raises(DataError, match='RLE size'):
        _check(coco, with_mask=False)


def test_masks_in_ignored_or_other_class_annotations_are_not_checked(coco):
    """Annotations mmdet skips (marked ignore, another class) never reach the mask loader."""
    def edit(coco_json):
        _, a = _first(coco_json, list)
        a['segmentation'], a['ignore'] = [[1, 1]], 1
        _, b = _first(coco_json, dict)
        b['segmentation'] = []
        coco_json['categories'].append({'id': 9, 'name': 'hexagon'})
        b['category_id'] = 9
    _edit(coco, edit)
    _check(coco)


def test_compressed_rle_lengths_match_pycocotools():
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (7, 5), (48, 48), (300, 200)]:
        for density in (0.0, 0.02, 0.5, 1.0):
            mask = (rng.random(shape) < density).astype(np.uint8)
            rle = mask_utils.encode(np.asfortranarray(mask))
            assert _rle_string_total(rle['counts'].decode('ascii')) == shape[0] * shape[1]


def test_image_size_against_the_file_header(coco):
    def edit(coco_json):
        coco_json['images'][1]['height'] = SIZE + 2
        return coco_json['images'][1]
    image = _edit(coco, edit)
    with pytest.raises(DataError, match=rf'instances_train2017.json: 1 image\(s\) differ in size '
                                        rf'from their file in .*train2017.* \(width x height\): '
                                        rf"images\[1\] \(id {image['id']}, "
                                        rf"{image['file_name']}\): file {SIZE}x{SIZE}, json "
                                        rf'{SIZE}x{SIZE + 2}'):
        _check(coco)


def test_image_size_follows_the_exif_orientation(coco):
    """mmcv turns an EXIF-rotated image upright: the json must give that size."""
    import mmcv
    coco_json = json.loads((coco / ANN).read_text())
    image = coco_json['images'][0]
    path = coco / 'train2017' / image['file_name']
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.fromarray(np.zeros((SIZE, SIZE + 16, 3), np.uint8)).save(path, exif=exif.tobytes())
    assert mmcv.imread(str(path)).shape[:2] == (SIZE + 16, SIZE)  # upright: h, w
    image['width'], image['height'] = SIZE, SIZE + 16
    # its masks were drawn for the old image
    coco_json['annotations'] = [a for a in coco_json['annotations']
                                if a['image_id'] != image['id']]
    (coco / ANN).write_text(json.dumps(coco_json))
    _check(coco)
    image['width'], image['height'] = SIZE + 16, SIZE  # the stored, unrotated size
    (coco / ANN).write_text(json.dumps(coco_json))
    with pytest.raises(DataError, match=rf'file {SIZE}x{SIZE + 16}, json {SIZE + 16}x{SIZE}'):
        _check(coco)


def _load_train_tool():
    spec = importlib.util.spec_from_file_location('mmsnnmlp_tool_train_masks',
                                                  osp.join(ROOT, 'tools/train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_tool_stops_before_building_a_model(coco, tmp_path, monkeypatch):
    index, ann_id = _edit(coco, _set_polygons([[1, 1, 20, 20]]))
    train = _load_train_tool()

    class NoRunner:
        @classmethod
        def from_cfg(cls, cfg):
            raise AssertionError('a runner was built despite the bad mask')

    monkeypatch.setattr(train, 'Runner', NoRunner)
    monkeypatch.setenv('LOCAL_RANK', '0')
    config = osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py')
    with pytest.raises(SystemExit, match=rf'Data check failed: train_dataloader: .*'
                                         rf'instances_train2017.json: .*annotations\[{index}\] '
                                         rf'\(id {ann_id}\): polygon 0 has 2 point'):
        train.main([config, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                    f'train_dataloader.dataset.data_root={coco}/',
                    f'val_dataloader.dataset.data_root={coco}/'])
