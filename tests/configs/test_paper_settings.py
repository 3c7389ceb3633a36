"""Every paper config against the table of the paper's settings
(helpers/paper_settings.py): optimizer, schedule, warm-up, batch, augmentation,
test scales, drop path, pretrained checkpoint. These are values that change no
parameter count, so only a comparison like this one notices a changed one.

Each config is loaded once for the module; no model is built."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.config import utils as config_utils

import mmsnnmlp  # noqa: F401  resolves mmsnnmlp:: and registers our types
from helpers.paper_settings import CONFIGS, LIF_GROUP, NO_DECAY_KEYS, PRETRAINED

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
COCO_CONFIGS = [c for c in CONFIGS if CONFIGS[c]['library'] == 'mmdet']
ADE_CONFIGS = [c for c in CONFIGS if CONFIGS[c]['library'] == 'mmseg']


def _id(name):
    return osp.basename(name).split('_fpn')[0].split('_8xb2')[0]


@pytest.fixture(scope='module')
def load():
    """config name -> Config, each loaded on first use. mmengine re-reads
    every metafile of mmdet/mmseg for each ``mmdet::``/``mmseg::`` base
    (seconds each): those package files are read once here instead."""
    cache, yaml_cache = {}, {}
    original = config_utils.load

    def cached_load(file, *args, **kwargs):
        if args or kwargs or not (isinstance(file, str) and file.endswith(('.yml', '.yaml'))):
            return original(file, *args, **kwargs)
        if file not in yaml_cache:
            yaml_cache[file] = original(file)
        return yaml_cache[file]

    def get(name):
        if name not in cache:
            cache[name] = Config.fromfile(osp.join(ROOT, 'configs', name))
        return cache[name]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(config_utils, 'load', cached_load)
        yield get


def test_the_table_lists_every_paper_config():
    import glob
    found = sorted(osp.relpath(p, osp.join(ROOT, 'configs'))
                   for p in glob.glob(osp.join(ROOT, 'configs/det/*.py')) +
                   glob.glob(osp.join(ROOT, 'configs/seg/*.py')))
    assert found == sorted(CONFIGS)


def _plain(value):
    """ConfigDicts, lists and tuples as plain dicts and lists, for ==."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _by_type(pipeline, kind):
    found = [t for t in pipeline if t['type'] == kind]
    assert len(found) == 1, f'{len(found)} {kind} in {pipeline}'
    return found[0]


@pytest.mark.parametrize('name', sorted(CONFIGS), ids=_id)
def test_backbone_variant_drop_path_and_pretrained(load, name):
    paper, cfg = CONFIGS[name], load(name)
    assert cfg.default_scope == paper['library']
    backbone = cfg.model.backbone
    assert backbone.type == 'SNNMLP'
    assert backbone.arch == paper['arch']
    assert backbone.drop_path_rate == paper['drop_path_rate']
    assert backbone.lif_group == LIF_GROUP
    assert _plain(backbone.init_cfg) == dict(type='Pretrained',
                                             checkpoint=PRETRAINED[paper['arch']])


@pytest.mark.parametrize('name', sorted(CONFIGS), ids=_id)
def test_optimizer(load, name):
    paper, cfg = CONFIGS[name], load(name)
    # the whole optimizer dict: an added eps or amsgrad fails too
    assert _plain(cfg.optim_wrapper.optimizer) == _plain(paper['optimizer'])
    assert cfg.optim_wrapper.get('clip_grad') is None
    custom = cfg.optim_wrapper.paramwise_cfg.custom_keys
    assert sorted(custom) == sorted(NO_DECAY_KEYS)
    assert all(_plain(custom[k]) == dict(decay_mult=0.0) for k in NO_DECAY_KEYS)


@pytest.mark.parametrize('name', sorted(CONFIGS), ids=_id)
def test_schedule_warmup_and_batch(load, name):
    paper, cfg = CONFIGS[name], load(name)
    schedule = paper['schedule']
    warmup, main = _plain(cfg.param_scheduler)
    assert warmup == paper['warmup']
    if schedule['by_epoch']:
        assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
        assert cfg.train_cfg.max_epochs == schedule['max_epochs']
        assert main == dict(type='MultiStepLR', begin=0, end=schedule['max_epochs'],
                            by_epoch=True, milestones=schedule['milestones'],
                            gamma=schedule['gamma'])
    else:
        assert cfg.train_cfg.type == 'IterBasedTrainLoop'
        assert cfg.train_cfg.max_iters == schedule['max_iters']
        assert main == dict(type='PolyLR', eta_min=schedule['eta_min'], power=schedule['power'],
                            begin=paper['warmup']['end'], end=schedule['max_iters'],
                            by_epoch=False)
    assert cfg.train_dataloader.batch_size == paper['batch_per_gpu']
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=paper['total_batch'])


@pytest.mark.parametrize('name', sorted(CONFIGS), ids=_id)
def test_resume_safe_hooks(load, name):
    """Ours: every paper config checkpoints safely and resumes exactly."""
    cfg = load(name)
    assert cfg.default_hooks.checkpoint.type == 'SafeCheckpointHook'
    assert [h['type'] for h in cfg.custom_hooks] == ['RNGStateHook']


@pytest.mark.parametrize('name', COCO_CONFIGS, ids=_id)
def test_coco_augmentation_and_test_scale(load, name):
    paper, cfg = CONFIGS[name], load(name)
    pipeline = _plain(cfg.train_dataloader.dataset.pipeline)
    assert _by_type(pipeline, 'RandomFlip')['prob'] == paper['flip_prob']
    plain, crop = _by_type(pipeline, 'RandomChoice')['transforms']
    multi_scale = dict(type='RandomChoiceResize', scales=_plain(paper['train_scales']),
                       keep_ratio=True)
    assert plain == [multi_scale]
    assert crop == [
        dict(type='RandomChoiceResize', scales=_plain(paper['crop_branch_scales']),
             keep_ratio=True),
        dict(type='RandomCrop', crop_type='absolute_range', crop_size=list(paper['crop_size']),
             allow_negative_crop=True),
        multi_scale]
    for loader in ('val_dataloader', 'test_dataloader'):
        test = _plain(cfg[loader].dataset.pipeline)
        assert _by_type(test, 'Resize') == dict(type='Resize', scale=list(paper['test_scale']),
                                                keep_ratio=True)
        assert not [t for t in test if 'Flip' in t['type']]
    heads = cfg.model.roi_head.bbox_head
    heads = heads if isinstance(heads, list) else [heads]
    assert [h.num_classes for h in heads] == [paper['num_classes']] * len(heads)
    assert cfg.model.roi_head.mask_head.num_classes == paper['num_classes']


@pytest.mark.parametrize('name', ADE_CONFIGS, ids=_id)
def test_ade_augmentation_and_test_scales(load, name):
    paper, cfg = CONFIGS[name], load(name)
    pipeline = _plain(cfg.train_dataloader.dataset.pipeline)
    assert _by_type(pipeline, 'LoadAnnotations')['reduce_zero_label'] is True
    assert _by_type(pipeline, 'RandomResize') == dict(
        type='RandomResize', scale=list(paper['train_scale']),
        ratio_range=list(paper['ratio_range']), keep_ratio=True)
    assert _by_type(pipeline, 'RandomCrop') == dict(
        type='RandomCrop', crop_size=list(paper['crop_size']), cat_max_ratio=paper['cat_max_ratio'])
    assert _by_type(pipeline, 'RandomFlip')['prob'] == paper['flip_prob']
    _by_type(pipeline, 'PhotoMetricDistortion')
    assert list(cfg.model.data_preprocessor.size) == list(paper['crop_size'])
    for loader in ('val_dataloader', 'test_dataloader'):
        test = _plain(cfg[loader].dataset.pipeline)
        assert _by_type(test, 'Resize') == dict(type='Resize', scale=list(paper['test_scale']),
                                                keep_ratio=True)
        assert _by_type(test, 'LoadAnnotations')['reduce_zero_label'] is True
    resize, flips, annotations, _ = _by_type(cfg.tta_pipeline, 'TestTimeAug')['transforms']
    w, h = paper['test_scale']
    assert _plain(resize) == [dict(type='Resize', scale=[int(w * r), int(h * r)], keep_ratio=True)
                              for r in paper['test_ratios']]
    assert sorted(f['prob'] for f in flips) == [0.0, 1.0]
    assert _plain(annotations) == [dict(type='LoadAnnotations', reduce_zero_label=True)]
    assert cfg.model.decode_head.num_classes == paper['num_classes']
    assert cfg.model.auxiliary_head.num_classes == paper['num_classes']
