"""The pre-flight checks of COCO and ADE20K-layout datasets on broken toy data."""
import json
import os
import shutil
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from mmsnnmlp.datasets import DataError, DataWarning, check_data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def pristine_toy(tmp_path_factory):
    out = tmp_path_factory.mktemp('pristine') / 'toy'
    subprocess.run([sys.executable, os.path.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                    str(out), '--num-train', '3', '--num-val', '2', '--size', '48'],
                   check=True, capture_output=True)
    return out


@pytest.fixture()
def toy(tmp_path, pristine_toy):
    """A fresh copy of the toy data for each test to break."""
    shutil.copytree(pristine_toy, tmp_path / 'data/toy')
    return tmp_path / 'data/toy'


def _cfg(kind, toy):
    name = {'det': 'mask-rcnn_snnmlp-toy_fpn_toy-coco.py', 'seg': 'snnmlp-toy_upernet_toy-ade.py'}
    cfg = Config.fromfile(os.path.join(ROOT, 'configs/toy', name[kind]))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[key].dataset
        ds.data_root = str(toy / ('coco' if kind == 'det' else 'ade/ADEChallengeData2016'))
    return cfg


def test_toy_data_passes_full_check(toy):
    for kind in ('det', 'seg'):
        check_data(_cfg(kind, toy), ['train_dataloader', 'val_dataloader'], full=True)


def test_empty_annotation_file(toy):
    (toy / 'coco/annotations/instances_val2017.json').write_text('')
    with pytest.raises(DataError, match=r'val_dataloader: Annotation file is empty: .*instances_val2017.json'):
        check_data(_cfg('det', toy), ['train_dataloader', 'val_dataloader'])
    (toy / 'coco/annotations/instances_val2017.json').write_text(json.dumps({'images': []}))
    with pytest.raises(DataError, match='lists no images'):
        check_data(_cfg('det', toy), ['val_dataloader'])


def test_undecodable_image(toy):
    victim = sorted((toy / 'coco/train2017').iterdir())[1]
    victim.write_bytes(b'\xff\xd8\xff\xe0 this is not really a jpeg')
    check_data(_cfg('det', toy), ['train_dataloader'], full=False)  # existence only
    with pytest.raises(DataError, match=rf'1 image\(s\) in .*train2017.* cannot be decoded: {victim.name}'):
        check_data(_cfg('det', toy), ['train_dataloader'], full=True)


@pytest.mark.parametrize('kind', ['det', 'seg'])
def test_full_check_only_up_to_the_size_limit(toy, monkeypatch, kind):
    """Datasets of up to FULL_CHECK_LIMIT images are decoded; bigger ones get
    the existence checks only (the toy train split has 3 images)."""
    from mmsnnmlp.datasets import common as data_check
    if kind == 'det':
        victim = sorted((toy / 'coco/train2017').iterdir())[1]
        victim.write_bytes(b'\xff\xd8\xff\xe0 this is not really a jpeg')
        problem = 'cannot be decoded'
    else:
        victim = sorted((toy / 'ade/ADEChallengeData2016/annotations/training').iterdir())[2]
        label = cv2.imread(str(victim), cv2.IMREAD_UNCHANGED)
        label[1, 1] = 7
        cv2.imwrite(str(victim), label)
        problem = 'hold class ids above 4'
    monkeypatch.setattr(data_check, 'FULL_CHECK_LIMIT', 3)
    with pytest.raises(DataError, match=rf'{problem}.*{victim.name}'):
        check_data(_cfg(kind, toy), ['train_dataloader'])
    monkeypatch.setattr(data_check, 'FULL_CHECK_LIMIT', 2)
    check_data(_cfg(kind, toy), ['train_dataloader'])


def test_label_out_of_range(toy):
    ann = sorted((toy / 'ade/ADEChallengeData2016/annotations/training').iterdir())[0]
    label = cv2.imread(str(ann), cv2.IMREAD_UNCHANGED)
    label[0, 0] = 9
    cv2.imwrite(str(ann), label)
    with pytest.raises(DataError, match=rf'hold class ids above 4 for 4 classes: {ann.name} \(values \[9\]\)'):
        check_data(_cfg('seg', toy), ['train_dataloader'], full=True)


def test_missing_label_map(toy):
    ann = sorted((toy / 'ade/ADEChallengeData2016/annotations/validation').iterdir())[0]
    ann.unlink()
    with pytest.raises(DataError, match=rf'val_dataloader: 1 label map\(s\) missing .*{ann.name}'):
        check_data(_cfg('seg', toy), ['val_dataloader'])


def _edit_coco(toy, edit, split='train2017'):
    path = toy / f'coco/annotations/instances_{split}.json'
    coco = json.loads(path.read_text())
    edit(coco)
    path.write_text(json.dumps(coco))
    return path


def _data_warnings(cfg, keys, **kwargs):
    """check_data's DataWarning messages (the imports it triggers warn too)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        check_data(cfg, keys, **kwargs)
    return [str(w.message) for w in record if issubclass(w.category, DataWarning)]


def test_coco_boxes_mmdet_would_skip(toy):
    """A few degenerate boxes warn (real COCO has some); a file of them is refused."""
    def flip_first(coco):
        coco['annotations'][0]['bbox'][2] = -3.0
        coco['annotations'][1]['bbox'][3] = 0.5
    _edit_coco(toy, flip_first)
    # full=False: these checks read only the JSON, so they run on any dataset size
    [message] = _data_warnings(_cfg('det', toy), ['train_dataloader'], full=False)
    assert 'instances_train2017.json: 2 of 7 annotation(s) would be skipped' in message
    assert '1 with negative width or height (annotations[0] (id 1, bbox' in message
    assert '1 with width or height below 1 pixel (annotations[1] (id 2' in message

    def all_negative(coco):
        for ann in coco['annotations']:
            ann['bbox'][2] = -abs(ann['bbox'][2])
    _edit_coco(toy, all_negative)
    with pytest.raises(DataError, match=r'train_dataloader: .*instances_train2017.json: 7 of 7 '
                                        r'annotation\(s\) would be skipped by mmdet: 7 with '
                                        r'negative width or height \(annotations\[0\]'):
        check_data(_cfg('det', toy), ['train_dataloader'], full=False)


def test_coco_boxes_outside_image_and_zero_area(toy):
    def edit(coco):
        for ann in coco['annotations'][:4]:
            ann['bbox'][0] = 48.0  # starts at the right edge of a 48-px image
        coco['annotations'][4]['area'] = 0
    _edit_coco(toy, edit)
    with pytest.raises(DataError, match=r'5 of 7 annotation\(s\) would be skipped by mmdet: '
                                        r'1 with area <= 0 \(annotations\[4\].*; 4 with box '
                                        r'outside its image'):
        check_data(_cfg('det', toy), ['train_dataloader'], full=False)


def test_coco_unknown_ids(toy):
    def edit(coco):
        for ann in coco['annotations'][:3]:
            ann['category_id'] = 7
        coco['annotations'][3]['category_id'] = 0
        coco['annotations'][4]['image_id'] = 999
    _edit_coco(toy, edit)
    with pytest.raises(DataError) as err:
        check_data(_cfg('det', toy), ['train_dataloader'], full=False)
    message = str(err.value)
    assert ("4 annotation(s) have category ids missing from 'categories' (which defines 1, 2, "
            "3): id 7 (3x), id 0 (1x)") in message
    assert "1 annotation(s) have image ids missing from 'images': id 999 (1x)" in message
    assert 'instances_train2017.json' in message


def test_coco_duplicate_ids(toy):
    def edit(coco):
        coco['annotations'][2]['id'] = coco['annotations'][0]['id']
        coco['images'][1]['id'] = coco['images'][0]['id']
    _edit_coco(toy, edit)
    with pytest.raises(DataError, match=r"1 image id\(s\) are used more than once: 1\n  "
                                        r"1 annotation id\(s\) are used more than once: 1"):
        check_data(_cfg('det', toy), ['train_dataloader'], full=False)


def test_coco_classes_against_categories(toy):
    _edit_coco(toy, lambda coco: coco['categories'][2].update(name='Triangle'))
    with pytest.raises(DataError, match=r"1 of the config's 3 classes are not among the file's "
                                        r"categories: 'triangle' \(the file has 'circle', "
                                        r"'square', 'Triangle'\)"):
        check_data(_cfg('det', toy), ['train_dataloader'], full=False)
    _edit_coco(toy, lambda coco: coco['categories'].reverse())
    cfg = _cfg('det', toy)
    cfg.train_dataloader.dataset.metainfo.classes = ('circle', 'square', 'Triangle')
    [message] = _data_warnings(cfg, ['train_dataloader'], full=False)
    assert ("the config's classes are in another order than the file's categories; mmdet "
            "numbers labels in the file's order") in message
    assert "file ('Triangle', 'square', 'circle'), config ('circle', 'square', 'Triangle')" \
        in message


def test_coco_training_needs_annotations(toy):
    _edit_coco(toy, lambda coco: coco.update(annotations=[]), 'val2017')
    _edit_coco(toy, lambda coco: coco.update(annotations=[]))
    assert _data_warnings(_cfg('det', toy), ['val_dataloader']) == []  # test-dev style
    with pytest.raises(DataError, match="no annotation of the config's classes: nothing to "
                                        'train on'):
        check_data(_cfg('det', toy), ['train_dataloader'])


@pytest.mark.parametrize('edit, expected', [
    (lambda c: c['images'][1].pop('file_name'),
     r"1 malformed entry in .*instances_train2017.json \(images\[\*\]\['file_name'\]: 1\): "
     r"images\[1\]\['file_name'\]: missing"),
    (lambda c: c['images'][0].update(file_name=5, height=0),
     r"images\[0\]\['file_name'\]: 5 is not a file name"),
    (lambda c: [c['annotations'][1].update(bbox=[1, 2]), c['annotations'][2].update(area=None),
                c['annotations'][3].update(bbox=[1, 2, 'w', 4]), c['annotations'].append(7)],
     r"4 malformed entries in .*instances_train2017.json \(annotations\[\*\]\['bbox'\]: 2, "
     r"annotations\[\*\]\['area'\]: 1, annotations\[\*\]: 1\): annotations\[1\]\['bbox'\]: "
     r"\[1, 2\] is not 4 finite numbers .*; annotations\[2\]\['area'\]: None is not a finite "
     r"number; .*; annotations\[7\]: is 7, not an object"),
    (lambda c: c['annotations'][0].update(bbox=[1.0, 2.0, float('nan'), 3.0]),
     r"annotations\[0\]\['bbox'\]: \[1.0, 2.0, nan, 3.0\] is not 4 finite numbers"),
    (lambda c: c['annotations'][0].pop('category_id'),
     r"annotations\[0\]\['category_id'\]: missing"),
    (lambda c: c.update(images={'a': 1}),
     r"'images' in .*instances_train2017.json is \{'a': 1\}, not a list"),
    (lambda c: c.pop('categories'),
     r"Annotation file has no 'categories' list: .*instances_train2017.json"),
    (lambda c: c['categories'].append({'id': [3]}),
     r"categories\[3\]\['name'\]: missing"),
], ids=['no-file-name', 'file-name-not-str', 'bad-boxes-and-areas', 'nan-box',
        'no-category-id', 'images-not-list', 'no-categories', 'bad-category'])
def test_coco_malformed_json(toy, edit, expected):
    _edit_coco(toy, edit)
    with pytest.raises(DataError, match=expected):
        check_data(_cfg('det', toy), ['train_dataloader'], full=False)


@pytest.mark.parametrize('content, expected', [
    (b'{"images": [{"file_name": "\xff\xfe"}]}',
     r'Annotation file is not UTF-8 text: .*instances_train2017.json \(byte 27: invalid start '
     r'byte\)'),
    (b'[1, 2]', r'Annotation file holds list, not a COCO object .*instances_train2017.json'),
], ids=['not-utf8', 'top-level-list'])
def test_coco_unreadable_json(toy, content, expected):
    (toy / 'coco/annotations/instances_train2017.json').write_bytes(content)
    with pytest.raises(DataError, match=expected):
        check_data(_cfg('det', toy), ['train_dataloader'], full=False)


def _first_label(toy, split='training'):
    return sorted((toy / f'ade/ADEChallengeData2016/annotations/{split}').iterdir())[0]


@pytest.mark.parametrize('full', [False, True])
def test_label_map_channels_and_size(toy, full):
    """Header checks: on every dataset size, not only the decoded small ones."""
    label = _first_label(toy)
    gray = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(label), np.stack([gray] * 3, -1))  # a "grayscale" label saved as RGB
    with pytest.raises(DataError, match=rf'train_dataloader: 1 label map\(s\) in .*training are '
                                        rf'not one-channel class-id images .*: {label.name} '
                                        rf'\(mode RGB, 3 channels\)'):
        check_data(_cfg('seg', toy), ['train_dataloader'], full=full)
    cv2.imwrite(str(label), gray[:40])
    image = label.name.replace('.png', '.jpg')
    with pytest.raises(DataError, match=rf'1 label map\(s\) in .*training differ in size from '
                                        rf'their image in .*images/training \(width x height\): '
                                        rf'{label.name} is 48x40, {image} 48x48'):
        check_data(_cfg('seg', toy), ['train_dataloader'], full=full)


def test_palette_label_map_is_read_as_mmseg_reads_it(toy):
    """A palette PNG holds class ids; mmseg reads them with pillow, not as colours."""
    from PIL import Image
    label = _first_label(toy)
    ids = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    palette = Image.fromarray(ids, 'L').convert('P')
    palette.putpalette([200, 30, 90] * 256)  # colours far above the class ids
    palette.save(label)
    assert _data_warnings(_cfg('seg', toy), ['train_dataloader'], full=True) == []
