"""The ablation configs (det, seg, ImageNet): each differs from the paper config it inherits
only in the backbone (or the tau/Vth learning rate) and builds the variant's parameter count."""
import ast
import glob
import json
import os.path as osp

import pytest
import timm
import torch
from mmengine.config import Config

from mmsnnmlp.models import SNNMLP
from mmsnnmlp.models.snnmlp_timm import classifier_config, register_timm_models
from helpers.variant_params import TINY, expected_params

pytestmark = pytest.mark.usefixtures('one_thread')  # tests/conftest.py

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NARROW = dict(embed_dims=4, depths=(1, 1, 2, 1))


ABLATION = sorted(glob.glob(osp.join(ROOT, 'configs/ablation/det/*.py')) +
                  glob.glob(osp.join(ROOT, 'configs/ablation/seg/*.py')))
IMAGENET = sorted(glob.glob(osp.join(ROOT, 'configs/ablation/imagenet/*.py')))


def _bases(path):
    """The config files ``path`` inherits, first (the paper config) first."""
    with open(path) as f:
        tree = ast.parse(f.read())
    node = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                and any(getattr(t, 'id', None) == '_base_' for t in n.targets))
    bases = ast.literal_eval(node)
    bases = [bases] if isinstance(bases, str) else list(bases)
    return [osp.normpath(osp.join(osp.dirname(path), b)) for b in bases]


def _plain(cfg):
    return json.loads(json.dumps(cfg.to_dict(), default=str))


@pytest.mark.parametrize('path', ABLATION, ids=lambda p: osp.basename(p)[:-3])
def test_dense_ablation_config(path):
    """Only the backbone (or, for lif-lr, the optimizer's tau/Vth rules) differs from the
    paper config it inherits, and the backbone has the variant's parameter count."""
    cfg = Config.fromfile(path)
    paper, *snippets = _bases(path)
    base = Config.fromfile(paper)
    mine, theirs = _plain(cfg), _plain(base)
    backbone = mine['model'].pop('backbone')
    theirs['model'].pop('backbone')
    # the ablation's backbone snippet may add variables of its own (none the paper config has)
    snippet_keys = {k for s in snippets for k in Config.fromfile(s).to_dict()} - set(theirs)
    for top in {'pretrained', 'optim_wrapper'} | snippet_keys:
        mine.pop(top, None), theirs.pop(top, None)
    assert mine == theirs
    if 'lif-lr' in path:
        keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
        assert keys['.tau'] == keys['.Vth'] == dict(lr_mult=0.1, decay_mult=0.)
        assert keys['norm'] == dict(decay_mult=0.)
        assert backbone == _plain(base)['model']['backbone']
        return
    assert cfg.optim_wrapper == base.optim_wrapper
    kwargs = {k: v for k, v in backbone.items() if k not in ('type', 'init_cfg')}
    assert kwargs.pop('arch') == 'tiny'
    model = SNNMLP('tiny', **kwargs)
    assert sum(p.numel() for p in model.parameters()) == expected_params(*TINY, kwargs)
    if not {'token_mixer', 'dwconv', 'lif_placement', 'lif_fix_tau'} & set(kwargs):
        # same keys as the released weights: the base config's checkpoint is kept
        assert backbone['init_cfg'] == _plain(base)['model']['backbone']['init_cfg']
    else:
        assert backbone['init_cfg']['checkpoint'].startswith('checkpoints/snnmlp-t_')


@pytest.mark.parametrize('path', IMAGENET, ids=lambda p: osp.basename(p)[:-3])
def test_imagenet_ablation_config(path):
    register_timm_models()
    name, kwargs = classifier_config(path)
    assert name == 'snnmlp_tiny'
    model = timm.create_model(name, **kwargs)
    head = 2 * 768 + 768 * 1000 + 1000
    assert sum(p.numel() for p in model.parameters()) == \
        expected_params(*TINY, kwargs, out_norms=False) + head
    assert isinstance(Config.fromfile(path).paper_top1, (float, type(None)))


def test_classifier_config_refuses_other_files(tmp_path):
    path = tmp_path / 'cfg.py'
    path.write_text("model = dict(type='resnet50')\n")
    with pytest.raises(ValueError, match='not an ImageNet model config'):
        classifier_config(str(path))


def test_lif_lr_option_gives_tau_vth_their_own_lr_and_no_decay():
    from mmengine.optim import build_optim_wrapper
    path = osp.join(ROOT, 'configs/ablation/det/mask-rcnn_snnmlp-t-lif-lr_fpn_ms-crop-3x_coco.py')
    cfg = Config.fromfile(path)
    model = torch.nn.Module()
    model.backbone = SNNMLP(NARROW, token_mixer='axial_shift', lif_placement='replace_gelu')
    model.neck = torch.nn.Conv2d(4, 4, 1)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr, base_wd = cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay
    group_of = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    seen = 0
    for name, param in model.named_parameters():
        group = group_of[id(param)]
        if name.rsplit('.', 1)[1] in ('tau', 'Vth'):
            seen += 1
            assert group['lr'] == pytest.approx(0.1 * base_lr) and group['weight_decay'] == 0, name
        else:
            assert group['lr'] == base_lr, name
            expected_wd = 0 if 'norm' in name else base_wd
            assert group['weight_decay'] == pytest.approx(expected_wd), name
    assert seen == 5 * 5 * 2 * 2  # 5 blocks x 5 LIF layers x 2 neurons x (tau, Vth)
