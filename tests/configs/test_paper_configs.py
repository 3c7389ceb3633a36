"""Every paper config loads, builds (pretrained from a local released-layout
file), matches the paper's model size and runs loss and predict."""
import glob
import os.path as osp

import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope

import mmsnnmlp  # noqa: F401
from helpers.released_layout import ARCHS, released_state_dict

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# paper Tables 2 and 3 (the B detection configs go beyond the paper: our count)
PAPER_PARAMS_M = {
    'mask-rcnn_snnmlp-t': 48, 'mask-rcnn_snnmlp-s': 69, 'mask-rcnn_snnmlp-b': 107.3,
    'cascade-mask-rcnn_snnmlp-t': 86, 'cascade-mask-rcnn_snnmlp-s': 107,
    'cascade-mask-rcnn_snnmlp-b': 145.1,
    'snnmlp-t_upernet': 60, 'snnmlp-s_upernet': 81, 'snnmlp-b_upernet': 121,
}
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/det/*.py')) +
                 glob.glob(osp.join(ROOT, 'configs/seg/*.py')))
VARIANT = {'t': 'tiny', 's': 'small', 'b': 'base'}
URLS = {v: f'https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/snnmlp/{f}'
        for v, f in (('tiny', 'snnmlp_tiny_81.88.pt'), ('small', 'snnmlp_small_83.30.pt'),
                     ('base', 'snnmlp_base_83.59.pt'))}


def metafile_model(name):
    """The metafile entry model-index.yml lists for a config name."""
    index = yaml.safe_load(open(osp.join(ROOT, 'model-index.yml')))
    for meta in index['Import']:
        for model in yaml.safe_load(open(osp.join(ROOT, meta)))['Models']:
            if model['Name'] == name:
                return model
    raise KeyError(name)


def test_exactly_the_paper_configs():
    names = sorted(osp.basename(c) for c in CONFIGS)
    expected = sorted(
        [f'mask-rcnn_snnmlp-{v}_fpn_ms-crop-3x_coco.py' for v in 'tsb'] +
        [f'cascade-mask-rcnn_snnmlp-{v}_fpn_4conv1fc-giou_ms-crop-3x_coco.py' for v in 'tsb'] +
        [f'snnmlp-{v}_upernet_8xb2-160k_ade20k-512x512.py' for v in 'tsb'])
    assert names == expected


@pytest.fixture(scope='module')
def released_files(tmp_path_factory):
    """A local file in the released layout per variant, built lazily."""
    folder = tmp_path_factory.mktemp('released')
    cache = {}

    def get(variant):
        if variant not in cache:
            path = folder / f'snnmlp_{variant}.pt'
            torch.save(released_state_dict(*ARCHS[variant], seed=7), path)
            cache[variant] = str(path)
        return cache[variant]

    return get


def _key(path):
    name = osp.basename(path)
    return name.split('_fpn')[0] if '_fpn' in name else name.split('_8xb2')[0]


def _sample(library, h, w):
    if library == 'mmdet':
        from mmdet.structures import DetDataSample
        from mmdet.structures.mask import BitmapMasks
        from mmengine.structures import InstanceData
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             scale_factor=(1.0, 1.0)))
        gt = InstanceData()
        gt.bboxes = torch.tensor([[10., 12., 60., 70.], [40., 30., 120., 90.]])
        gt.labels = torch.tensor([1, 5])
        masks = torch.zeros(2, h, w, dtype=torch.uint8)
        masks[0, 12:70, 10:60] = 1
        masks[1, 30:90, 40:120] = 1
        gt.masks = BitmapMasks(masks.numpy(), h, w)
        sample.gt_instances = gt
        return sample
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
    sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, h, w)))
    return sample


def _inputs(library, model, training, size=(96, 128), batch=2):
    """A preprocessed batch (two images: BatchNorm in the heads needs > 1 value)."""
    gen = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 255, (3, *size), dtype=torch.uint8, generator=gen)
              for _ in range(batch)]
    samples = [_sample(library, *size) for _ in range(batch)]
    return model.data_preprocessor(dict(inputs=images, data_samples=samples), training=training)


@pytest.mark.parametrize('config', CONFIGS, ids=_key)
def test_paper_config(config, released_files):
    cfg = Config.fromfile(config)
    library = cfg.default_scope
    backbone = cfg.model.backbone
    variant = VARIANT[_key(config).split('snnmlp-')[1][0]]
    assert backbone.type == 'SNNMLP' and backbone.arch == variant
    assert backbone.init_cfg.checkpoint == URLS[variant]
    assert cfg.custom_imports.imports == ['mmsnnmlp']
    custom = cfg.optim_wrapper.paramwise_cfg.custom_keys
    assert all(custom[k].decay_mult == 0 for k in ('norm', '.tau', '.Vth'))
    backbone.init_cfg.checkpoint = released_files(variant)

    registry = __import__(f'{library}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(library):
        model = revert_sync_batchnorm(registry.build(cfg.model))
        model.init_weights()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        assert params == pytest.approx(PAPER_PARAMS_M[_key(config)], rel=0.015)
        name = osp.splitext(osp.basename(config))[0]
        assert f'{params:.2f}M' == metafile_model(name)['Metadata']['Parameters']
        # pretrained weights really arrived
        sd = released_state_dict(*ARCHS[variant], seed=7)
        assert torch.equal(model.backbone.state_dict()['layers.1.blocks.0.lif_module.lif1.tau'],
                           sd['layers.1.blocks.0.lif_module.lif1.tau'])
        model.train()
        total, _ = model.parse_losses(model(**_inputs(library, model, True), mode='loss'))
        assert torch.isfinite(total)
        total.backward()
        assert model.backbone.patch_embed.proj.weight.grad is not None
        model.eval()
        with torch.no_grad():
            preds = model(**_inputs(library, model, False), mode='predict')
    assert len(preds) == 2
    if library == 'mmdet':
        assert 'masks' in preds[0].pred_instances
    else:
        assert preds[0].pred_sem_seg.data.shape[-2:] == (96, 128)
