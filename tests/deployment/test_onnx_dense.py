"""A toy Mask R-CNN, a toy Cascade Mask R-CNN and a toy UperNet with their
networks in ONNX Runtime score what the PyTorch models score on the toy data
(within 0.005)."""
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')
pytest.importorskip('mmdet')
pytest.importorskip('mmseg')

from mmengine import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmsnnmlp.deployment.dense import onnx_detector, onnx_segmentor  # noqa: E402
from mmsnnmlp.deployment.onnx_export import check_onnx  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = {'det': 'mask-rcnn_snnmlp-toy_fpn_toy-coco.py', 'seg': 'snnmlp-toy_upernet_toy-ade.py'}
# The paper's Cascade Mask R-CNN heads (configs/det/_base_) on the toy Mask R-CNN, narrowed
CASCADE = """
_base_ = [{toy!r}, {cascade!r}]
model = _base_.cascade_rcnn
_narrow = dict(in_channels=64, conv_out_channels=32, fc_out_channels=64, num_classes=3)
model.roi_head.bbox_head = [dict(h, **_narrow) for h in _base_.cascade_rcnn.roi_head.bbox_head]
"""


def _config(kind, tmp_path):
    if kind != 'cascade':
        return Config.fromfile(os.path.join(ROOT, 'configs/toy', CONFIGS[kind]))
    path = tmp_path / 'cascade_toy.py'
    path.write_text(CASCADE.format(
        toy=os.path.join(ROOT, 'configs/toy', CONFIGS['det']),
        cascade=os.path.join(ROOT, 'configs/det/_base_/cascade-mask-rcnn_4conv1fc-giou.py')))
    return Config.fromfile(str(path))


@pytest.fixture(scope='module')
def toy_data(tmp_path_factory):
    out = tmp_path_factory.mktemp('deploy') / 'toy'
    subprocess.run([sys.executable, os.path.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                    str(out), '--num-train', '1', '--num-val', '4', '--size', '80'],
                   check=True, capture_output=True)
    return out


def _runner(kind, toy, work_dir):
    cfg = _config(kind, work_dir.parent)
    root = str(toy / ('ade/ADEChallengeData2016' if kind == 'seg' else 'coco/'))
    cfg.test_dataloader.dataset.data_root = root
    if kind != 'seg':
        cfg.test_evaluator.ann_file = os.path.join(root, 'annotations/instances_val2017.json')
        cfg.model.test_cfg.rcnn.score_thr = 0.0  # an untrained model: keep its boxes
    if kind == 'cascade':  # its eight graphs cost more: one image, 20 detections
        cfg.test_dataloader.dataset.indices = 1
        cfg.model.test_cfg.rcnn.max_per_img = 20
    cfg.work_dir, cfg.log_level = str(work_dir), 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.model.init_weights()
    return runner


def _assert_same_detections(expected, got):
    """Untrained toy models score ~0 mAP either way: compare the detections too."""
    for a, b in zip(expected, got):
        a, b = a.pred_instances, b.pred_instances
        assert len(a) == len(b) > 0
        assert torch.equal(a.labels, b.labels)
        torch.testing.assert_close(b.bboxes, a.bboxes, atol=1e-2, rtol=0)
        torch.testing.assert_close(b.scores, a.scores, atol=1e-4, rtol=0)
        assert (a.masks == b.masks).float().mean() > 0.999


@pytest.mark.parametrize('kind', ['det', pytest.param('cascade', marks=pytest.mark.slow), 'seg'])
def test_exported_toy_model_scores_as_pytorch(tmp_path, toy_data, kind):
    torch.manual_seed(0)
    runner = _runner(kind, toy_data, tmp_path / 'work')
    expected = runner.test()
    batch = next(iter(runner.test_dataloader))
    with torch.no_grad():
        expected_pred = runner.model.test_step(batch)
    export = onnx_segmentor if kind == 'seg' else onnx_detector
    files = export(runner.model, batch, str(tmp_path / 'onnx'))
    if kind == 'det':
        assert set(files) == {'feat', 'rpn_head', 'roi_bbox_head0', 'roi_mask_head0'}
    if kind == 'cascade':  # three stages, each with its box and mask head
        assert set(files) == {'feat', 'rpn_head'} | {f'roi_{head}{i}' for head in
                                                   ('bbox_head', 'mask_head') for i in range(3)}
    for path in files.values():
        assert check_onnx(path)['domains'] == ['']
    got = runner.test()
    if kind != 'seg':
        with torch.no_grad():
            _assert_same_detections(expected_pred, runner.model.test_step(batch))
    keys = (['mIoU', 'aAcc'] if kind == 'seg'
            else ['coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'])
    print({k: (float(expected[k]), float(got[k])) for k in keys})
    for key in keys:
        scale = 100.0 if kind == 'seg' else 1.0  # mmseg reports percent
        assert abs(float(got[key]) - float(expected[key])) <= 0.005 * scale, key
