"""Autocast (bf16, fp16) through the backbone and the paper configs: no dtype
errors, LIF and norm math in float32 inside, outputs close to float32 runs."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope

import mmsnnmlp  # noqa: F401
from mmsnnmlp.models import SNNMLP
from mmsnnmlp.ops import LIF, NormAct

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _weighted_sum(outs):
    gen = torch.Generator().manual_seed(5)
    return sum((o.float() * torch.randn(o.shape, generator=gen)).sum() for o in outs)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_backbone_under_autocast(dtype):
    torch.manual_seed(0)
    model = SNNMLP(arch=dict(embed_dims=16, depths=(1, 1, 2, 1)), drop_path_rate=0.0)
    x = torch.randn(2, 3, 48, 64)
    reference = [o.detach() for o in model(x)]
    seen = {}

    def record(module, inputs, output):
        dtypes = {output.dtype} | ({inputs[0].dtype} if isinstance(module, LIF) else set())
        seen.setdefault(type(module).__name__, set()).update(dtypes)
    for m in model.modules():
        if isinstance(m, LIF) or (isinstance(m, NormAct) and m.autocast_output):
            m.register_forward_hook(record)
    with torch.autocast('cpu', dtype=dtype):
        outs = model(x)
    _weighted_sum(outs).backward()
    # the outputs keep float32, as F.group_norm does under CUDA autocast
    assert all(o.dtype == torch.float32 for o in outs)
    # inside, LIF and the outputs of norms feeding convolutions are in the
    # autocast dtype (the residual stream stays float32)
    assert seen == {'LIF': {dtype}, 'NormAct': {dtype}}
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32, name
        assert torch.isfinite(p.grad).all(), name
    # LIF and norm math in float32: the outputs stay close to a float32 run
    tol = 0.1 if dtype == torch.bfloat16 else 0.02
    for o, r in zip(outs, reference):
        assert (o - r).abs().mean() < tol * r.abs().mean()


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
    from test_configs import _inputs
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
