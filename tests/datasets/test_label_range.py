"""The label-range check of segmentation data at its boundaries, through
every entry point: a label num_classes - 1 passes, num_classes fails, 255
passes only as the ignore index; with and without reduce_zero_label (whose
raw ids are one higher: raw 0 is the ignored "other"), however the config
says it."""
import os.path as osp
import subprocess
import sys
from contextlib import contextmanager

import cv2
import pytest
from mmengine.config import Config

from mmsnnmlp.datasets import DataError, check_data
from mmsnnmlp.datasets.seg import check_seg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NUM_CLASSES = 5  # the toy label maps hold raw ids 0..4: valid in every form below
CLASSES = tuple(f'class{i}' for i in range(NUM_CLASSES))


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    out = tmp_path_factory.mktemp('label_range') / 'toy'
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                    str(out), '--num-train', '2', '--num-val', '1', '--size', '32'],
                   check=True, capture_output=True)
    return out / 'ade/ADEChallengeData2016'


def _pipeline(**load_annotations):
    return [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', **load_annotations),
            dict(type='PackSegInputs')]


# name -> (dataset config, reduce_zero_label as mmseg applies it)
FORMS = {
    # the paper configs' form: ADE20K, and the flag in the pipeline too
    'ade20k_flag_in_pipeline': (dict(type='ADE20KDataset',
                                     pipeline=_pipeline(reduce_zero_label=True)), True),
    'ade20k_default': (dict(type='ADE20KDataset', pipeline=_pipeline()), True),
    'flag_on_dataset': (dict(type='BaseSegDataset', reduce_zero_label=True,
                             pipeline=_pipeline()), True),
    'ade20k_flag_off': (dict(type='ADE20KDataset', reduce_zero_label=False,
                             pipeline=_pipeline()), False),
    'plain': (dict(type='BaseSegDataset', pipeline=_pipeline()), False),
}


def _dataset(root, form, metainfo=True):
    ds, _ = FORMS[form]
    ds = dict(ds, data_root=str(root), img_suffix='.jpg', seg_map_suffix='.png',
              data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'))
    if metainfo:
        ds['metainfo'] = dict(classes=CLASSES)
    return ds


def _check_data(root, form, metainfo=True):
    """check_data on a config holding this dataset; without metainfo the
    class count comes from the decode head."""
    cfg = Config(dict(default_scope='mmseg',
                      model=dict(decode_head=dict(num_classes=NUM_CLASSES)),
                      train_dataloader=dict(dataset=_dataset(root, form, metainfo))))
    check_data(cfg, ['train_dataloader'], full=True)


ENTRY_POINTS = {
    'check_data': _check_data,
    'check_data_classes_from_head': lambda root, form: _check_data(root, form, metainfo=False),
    'check_seg': lambda root, form: check_seg(_dataset(root, form), NUM_CLASSES, full=True),
}


@contextmanager
def _pixel(root, value):
    """One label map with one pixel set to this raw value, restored after."""
    path = osp.join(root, 'annotations/training', 'ADE_train_00000002.png')
    with open(path, 'rb') as f:
        original = f.read()
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    label[3, 5] = value
    assert cv2.imwrite(path, label)
    try:
        yield osp.basename(path)
    finally:
        with open(path, 'wb') as f:
            f.write(original)


def _raw(form, label):
    """The raw id that mmseg turns into this training label."""
    return label + 1 if FORMS[form][1] else label


@pytest.mark.parametrize('entry', sorted(ENTRY_POINTS))
@pytest.mark.parametrize('form', sorted(FORMS))
def test_label_boundaries(ade_root, form, entry):
    check = ENTRY_POINTS[entry]
    check(ade_root, form)  # the toy data as made
    with _pixel(ade_root, _raw(form, NUM_CLASSES - 1)):
        check(ade_root, form)
    with _pixel(ade_root, 255):  # the ignore index
        check(ade_root, form)
    top = _raw(form, NUM_CLASSES - 1)
    for label in (NUM_CLASSES, NUM_CLASSES + 1):
        raw = _raw(form, label)
        with _pixel(ade_root, raw) as name:
            with pytest.raises(DataError, match=rf'hold class ids above {top} for {NUM_CLASSES} '
                                                rf'classes: {name} \(values \[{raw}\]\)'):
                check(ade_root, form)


def test_255_is_a_class_id_where_the_ignore_index_is_another(ade_root):
    cfg = Config(dict(default_scope='mmseg',
                      model=dict(decode_head=dict(num_classes=NUM_CLASSES, ignore_index=0)),
                      train_dataloader=dict(dataset=_dataset(ade_root, 'plain'))))
    with _pixel(ade_root, 255):
        with pytest.raises(DataError, match=r'values \[255\]'):
            check_data(cfg, ['train_dataloader'], full=True)
