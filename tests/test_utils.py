"""Data pre-flight checks, atomic output, the mmengine checkpoint allowlist, the converter."""
import json
import os
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmsnnmlp.utils import DataError, allow_mmengine_checkpoints, atomic_open, check_data
from released_layout import ARCHS, released_state_dict, training_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture()
def toy(tmp_path):
    subprocess.run([sys.executable, os.path.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                    str(tmp_path / 'data/toy'), '--num-train', '3', '--num-val', '2', '--size',
                    '48'], check=True, capture_output=True)
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
    from mmsnnmlp.utils import data_check
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


def test_atomic_open_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / 'out.json'
    target.write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_open(str(target)) as f:
            f.write('half-written')
            raise RuntimeError('killed mid-write')
    assert target.read_text() == 'old'
    assert os.listdir(tmp_path) == ['out.json']  # no temp file left behind
    with pytest.raises(FileExistsError, match='Refusing to overwrite'):
        with atomic_open(str(target), overwrite=False) as f:
            f.write('new')
    with atomic_open(str(target)) as f:
        f.write('new')
    assert target.read_text() == 'new'


class _Sneaky:
    """getattr on an allowed class, but not one of its statistics methods."""

    def __reduce__(self):
        from mmengine.logging.history_buffer import HistoryBuffer
        return (getattr, (HistoryBuffer, 'register_statistics'))


def test_mmengine_allowlist_is_narrow(tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer
    allow_mmengine_checkpoints()
    buf = HistoryBuffer()
    buf.update(1.5)
    path = tmp_path / 'hub.pth'
    torch.save({'buffer': buf, 'array': np.arange(3.0), 'scalar': np.float64(2.0)}, path)
    loaded = torch.load(path)
    assert loaded['buffer'].mean() == 1.5 and loaded['scalar'] == 2.0
    torch.save({'x': _Sneaky()}, tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError, match='only HistoryBuffer statistics methods'):
        torch.load(tmp_path / 'evil.pth')


def test_model_converter(tmp_path):
    src = tmp_path / 'snnmlp_tiny_81.88.pt'
    state = released_state_dict(*ARCHS['tiny'], seed=5)
    src.write_bytes(training_checkpoint(state))
    dst = tmp_path / 'backbone.pth'
    tool = [sys.executable, os.path.join(ROOT, 'tools/model_converters/snnmlp_to_backbone.py')]
    out = subprocess.run(tool + [str(src), str(dst)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    converted = torch.load(dst)['state_dict']
    assert set(converted) == {k for k in state if not k.startswith(('head.', 'norm.'))}
    assert all(torch.equal(converted[k], state[k]) for k in converted)
    before = dst.read_bytes()
    again = subprocess.run(tool + [str(src), str(dst)], capture_output=True, text=True)
    assert again.returncode != 0 and 'exists; pass --force' in again.stderr
    assert dst.read_bytes() == before
