"""The paper configs train under bf16 autocast: no dtype errors, finite
float32 gradients in the backbone."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope

import mmsnnmlp  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _weighted_sum(outs):
    gen = torch.Generator().manual_seed(5)
    return sum((o.float() * torch.randn(o.shape, generator=gen)).sum() for o in outs)


T_CONFIGS = [osp.join(ROOT, 'configs', c) for c in (
    'det/mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py',
    'det/cascade-mask-rcnn_snnmlp-t_fpn_4conv1fc-giou_ms-crop-3x_coco.py',
    'seg/snnmlp-t_upernet_8xb2-160k_ade20k-512x512.py')]
# UperNet's 512-channel head in bf16 on 2 CPU cores: about a minute
CASES = [pytest.param(c, marks=pytest.mark.slow) if '/seg/' in c else c for c in T_CONFIGS]


def test_t_configs_cover_each_head_type():
    heads = {Config.fromfile(c).model.type for c in T_CONFIGS}
    assert heads == {'MaskRCNN', 'CascadeRCNN', 'EncoderDecoder'}
    assert set(T_CONFIGS) <= set(glob.glob(osp.join(ROOT, 'configs/*/*.py')))


@pytest.mark.parametrize('config', CASES, ids=lambda c: osp.basename(c).split('_')[0])
def test_paper_config_trains_under_bf16_autocast(config):
    """The segmentor's whole loss; for detectors, backbone + FPN (mmcv's CPU
    NMS has no bf16 kernel: on GPUs mmdet runs AMP in fp16 with its own casts)."""
    from test_paper_configs import _inputs
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None  # random weights: dtypes are under test
    library = cfg.default_scope
    registry = __import__(f'{library}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(library):
        model = revert_sync_batchnorm(registry.build(cfg.model))
        model.init_weights()
        model.train()
        data = _inputs(library, model, True, size=(64, 96))
        with torch.autocast('cpu', dtype=torch.bfloat16):
            if library == 'mmseg':
                loss, _ = model.parse_losses(model(**data, mode='loss'))
            else:
                loss = _weighted_sum(model.extract_feat(data['inputs']))
        assert torch.isfinite(loss)
        loss.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all()
               for g in grads)
