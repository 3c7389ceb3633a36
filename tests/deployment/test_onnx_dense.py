"""A toy Mask R-CNN and a toy UperNet with their networks in ONNX Runtime
score what the PyTorch models score on the toy data (within 0.005)."""
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


@pytest.fixture(scope='module')
def toy_data(tmp_path_factory):
    out = tmp_path_factory.mktemp('deploy') / 'toy'
    subprocess.run([sys.executable, os.path.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                    str(out), '--num-train', '1', '--num-val', '4', '--size', '80'],
                   check=True, capture_output=True)
    return out


def _runner(kind, toy, work_dir):
    cfg = Config.fromfile(os.path.join(ROOT, 'configs/toy', CONFIGS[kind]))
    root = str(toy / ('coco/' if kind == 'det' else 'ade/ADEChallengeData2016'))
    cfg.test_dataloader.dataset.data_root = root
    if kind == 'det':
        cfg.test_evaluator.ann_file = os.path.join(root, 'annotations/instances_val2017.json')
        cfg.model.test_cfg.rcnn.score_thr = 0.0  # an untrained model: keep its boxes
    cfg.work_dir, cfg.log_level = str(work_dir), 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.model.init_weights()
    return runner


@pytest.mark.parametrize('kind', ['det', 'seg'])
def test_exported_toy_model_scores_as_pytorch(tmp_path, toy_data, kind):
    torch.manual_seed(0)
    runner = _runner(kind, toy_data, tmp_path / 'work')
    expected = runner.test()
    batch = next(iter(runner.test_dataloader))
    export = onnx_detector if kind == 'det' else onnx_segmentor
    files = export(runner.model, batch, str(tmp_path / 'onnx'))
    if kind == 'det':
        assert set(files) == {'feat', 'rpn_head', 'roi_bbox_head0', 'roi_mask_head0'}
    for path in files.values():
        assert check_onnx(path)['domains'] == ['']
    got = runner.test()
    keys = (['coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'] if kind == 'det'
            else ['mIoU', 'aAcc'])
    print({k: (float(expected[k]), float(got[k])) for k in keys})
    for key in keys:
        scale = 1.0 if kind == 'det' else 100.0  # mmseg reports percent
        assert abs(float(got[key]) - float(expected[key])) <= 0.005 * scale, key
