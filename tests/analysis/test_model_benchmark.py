"""benchmark_model.py: whole detectors / segmentors through their test
pipeline on the toy data, ours beside a baseline, on CPU."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from mmsnnmlp.analysis.model_benchmark import has_annotations, load_benchmark_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_DET = osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py')
TOY_SEG = osp.join(ROOT, 'configs/toy/snnmlp-toy_upernet_toy-ade.py')
# our toy UperNet with mmseg's ResNet-18 (V1c) in place of SNN-MLP
RESNET_SEG = f"""
_base_ = {TOY_SEG!r}
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(_delete_=True, type='ResNetV1c', depth=18, num_stages=4,
                  out_indices=(0, 1, 2, 3), norm_cfg=norm_cfg, contract_dilation=True,
                  style='pytorch', init_cfg=None),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
"""
# mmdet's own Swin-T Mask R-CNN config, shrunk to the toy data
SWIN_DET = """
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
metainfo = dict(classes=('circle', 'square', 'triangle'))
model = dict(roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)))
test_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False, dataset=dict(
    metainfo=metainfo,
    pipeline=[dict(type='LoadImageFromFile'),
              dict(type='Resize', scale=(128, 128), keep_ratio=True),
              dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
              dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                    'img_shape', 'scale_factor'))]))
"""


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    work = tmp_path_factory.mktemp('model_benchmark')
    out = subprocess.run([sys.executable, osp.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                          'data/toy', '--num-train', '1', '--num-val', '1', '--size', '64'],
                         cwd=work, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return work


def _tool(cwd, *args):
    cmd = [sys.executable, osp.join(ROOT, 'tools/analysis_tools/benchmark_model.py'),
           *map(str, args)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=cwd)
    assert out.returncode == 0, f'{cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}'
    return out


def test_data_root_moves_the_dataset_and_the_annotation_file():
    cfg = load_benchmark_config(TOY_DET, data_root='/elsewhere/coco/', num_images=3,
                                num_workers=2)
    assert cfg.test_dataloader.dataset.data_root == '/elsewhere/coco/'
    assert cfg.test_evaluator.ann_file == '/elsewhere/coco/annotations/instances_val2017.json'
    assert cfg.test_dataloader.dataset.indices == 3
    assert cfg.test_dataloader.num_workers == 2 and cfg.test_dataloader.persistent_workers
    # a library's own config, named by package
    cfg = load_benchmark_config('mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py',
                                data_root='data/toy/coco/')
    assert cfg.default_scope == 'mmdet'
    assert cfg.test_evaluator.ann_file == 'data/toy/coco/annotations/instances_val2017.json'


def test_metric_only_where_annotations_are(toy, monkeypatch):
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    monkeypatch.chdir(toy)
    init_default_scope('mmseg')
    cfg = load_benchmark_config(TOY_SEG)
    dataset = Runner.build_dataloader(cfg.test_dataloader).dataset
    assert has_annotations(cfg, dataset)
    seg_dir = dataset.get_data_info(0)['seg_map_path']
    cfg = load_benchmark_config(TOY_SEG, cfg_options={
        'test_dataloader.dataset.data_prefix.seg_map_path': 'no_such_dir'})
    dataset = Runner.build_dataloader(cfg.test_dataloader).dataset
    assert dataset.get_data_info(0)['seg_map_path'] != seg_dir
    assert not has_annotations(cfg, dataset)
    init_default_scope('mmdet')
    cfg = load_benchmark_config(TOY_DET, cfg_options={'test_evaluator.format_only': True})
    assert not has_annotations(cfg, Runner.build_dataloader(cfg.test_dataloader).dataset)


def test_ours_beside_a_resnet_baseline_on_toy_ade(toy):
    (toy / 'resnet18_toy_ade.py').write_text(RESNET_SEG)
    _tool(toy, TOY_SEG, 'resnet18_toy_ade.py', '--names', 'snnmlp-toy', 'resnet18',
          '--device', 'cpu', '--warmup', 1, '--out', 'bench')
    result = json.load(open(toy / 'bench/benchmark_model.json'))
    ours, base = result['rows']
    assert result['environment']['device'] == 'cpu'
    assert (ours['name'], base['name']) == ('snnmlp-toy', 'resnet18')
    for row in (ours, base):
        assert row['library'] == 'mmseg' and row['images'] == 1 and row['weights'] == 'random'
        assert row['data_ms'] > 0 and row['model_ms'] > 0 and row['fps'] > 0
        assert row['flops_g'] > 0 and row['flops_shape'] == 'x'.join(map(str,
                                                                       row['input_shape']))
        assert row['metric'] == 'mIoU' and 0 <= row['score'] <= 100
        assert 'aAcc' in row['metrics']
    assert ours['params_m'] == pytest.approx(2.11, abs=0.01)
    assert base['params_m'] > 11  # ResNet-18 alone has 11.2M (without its fc)
    markdown = (toy / 'bench/benchmark_model.md').read_text()
    assert '| model | library | params (M) |' in markdown
    assert '| snnmlp-toy | mmseg |' in markdown and '| resnet18 | mmseg |' in markdown


def test_bad_arguments_exit_with_a_message(toy):
    cmd = [sys.executable, osp.join(ROOT, 'tools/analysis_tools/benchmark_model.py'), TOY_SEG,
           '--names', 'a', 'b', '--no-flops']
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=toy)
    assert out.returncode != 0 and 'one name and one checkpoint per config' in out.stderr
    out = subprocess.run(cmd[:3] + ['no_such_config.py'], capture_output=True, text=True,
                         timeout=300, cwd=toy)
    assert out.returncode != 0 and 'Config file not found' in out.stderr


@pytest.mark.slow
def test_ours_beside_mmdets_swin_config_on_toy_coco(toy):
    """Mask R-CNN: our toy config and mmdet's shipped Swin-T config (shrunk to
    the toy data), with a checkpoint for ours: the metric comes from it."""
    (toy / 'swin_toy_coco.py').write_text(SWIN_DET)
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.registry import MODELS
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TOY_DET).model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, toy / 'toy_det.pth')
    _tool(toy, TOY_DET, 'swin_toy_coco.py', '--checkpoints', 'toy_det.pth', 'none',
          '--data-root', 'data/toy/coco/', '--device', 'cpu', '--warmup', 0, '--out', 'det')
    ours, swin = json.load(open(toy / 'det/benchmark_model.json'))['rows']
    assert ours['weights'] == 'toy_det.pth' and swin['weights'] == 'random'
    for row in (ours, swin):
        assert row['library'] == 'mmdet' and row['images'] == 1
        assert row['metric'] == 'coco/bbox_mAP' and 'coco/segm_mAP' in row['metrics']
        assert row['flops_g'] > 0 and row['model_ms'] > 0
    assert swin['params_m'] > 40  # Swin-T Mask R-CNN, ~48M
