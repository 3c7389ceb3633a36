"""Config mistakes that mmengine lets through silently: a misspelt top-level
key (ignored: the full schedule runs), a ``--cfg-options`` value of the wrong
kind (fails later without naming the key), and a checkpoint trained on the
config's classes in another order (scored under the wrong names)."""
import importlib.util
import os.path as osp
import warnings

import cv2
import numpy as np
import pytest
import torch

from mmsnnmlp.engine.launch import ConfigWarning, load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py')
SEG = osp.join(ROOT, 'configs/toy/snnmlp-toy_upernet_toy-ade.py')
TOY_CLASSES = ['circle', 'square', 'triangle']


def _config(tmp_path, body, base=SEG):
    path = tmp_path / 'my_config.py'
    path.write_text(f'_base_ = {base!r}\n{body}\n')
    return str(path)


def _config_warnings(path, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        load_config(path, **kwargs)
    return [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)]


# -- misspelt top-level keys ----------------------------------------------------

@pytest.mark.parametrize('typo, meant', [('trian_cfg', 'train_cfg'),
                                         ('default_hook', 'default_hooks'),
                                         ('optim_wraper', 'optim_wrapper'),
                                         ('img_ratio', 'img_ratios')])  # a key of the bases
def test_a_near_miss_warns_by_name(tmp_path, typo, meant):
    path = _config(tmp_path, f'{typo} = dict(max_iters=2)')
    found = _config_warnings(path)
    assert found == [f"Config key '{typo}' is read by nothing, so it is ignored; did you mean "
                     f"'{meant}'? ({path})"]


def test_a_near_miss_from_cfg_options_warns_too(tmp_path):
    found = _config_warnings(SEG, cfg_options={'trian_cfg.max_iters': 2})
    assert len(found) == 1 and "'trian_cfg'" in found[0] and "'train_cfg'" in found[0]


def test_new_keys_far_from_known_ones_are_fine(tmp_path):
    path = _config(tmp_path, "my_notes = 'run 3'\nwidths = [1, 2]")
    assert _config_warnings(path) == []


@pytest.mark.parametrize('config', [DET, SEG], ids=['det', 'seg'])
def test_shipped_configs_load_without_warnings(config):
    assert _config_warnings(config) == []


# -- --cfg-options of the wrong kind --------------------------------------------

@pytest.mark.parametrize('option, message', [
    ('train_cfg.max_iters=abc', r"--cfg-options train_cfg.max_iters='abc': train_cfg.max_iters "
                                r"must be a number \(the config has 400\), got str 'abc'"),
    ('train_cfg.max_iters=1,2', r'train_cfg.max_iters=\[1, 2\]: train_cfg.max_iters must be a '
                                r'number'),
    ('param_scheduler.0.end=x', r"param_scheduler.0.end='x': param_scheduler.0.end must be a "
                                r'number'),
    ('default_hooks.checkpoint.by_epoch=maybe',
     r"default_hooks.checkpoint.by_epoch='maybe': default_hooks.checkpoint.by_epoch must be True "
     r'or False \(the config has False\)'),
])
def test_train_tool_names_the_key_of_a_bad_option(monkeypatch, tmp_path, option, message):
    monkeypatch.chdir(tmp_path)
    train = _load_tool('tools/train.py')
    monkeypatch.setattr(train, 'Runner', None)
    with pytest.raises(SystemExit, match=message):
        train.main([SEG, '--work-dir', str(tmp_path / 'w'), '--cfg-options', option])
    assert not (tmp_path / 'w').exists()


def test_options_of_the_right_kind_pass():
    cfg = load_config(SEG, cfg_options={'train_cfg.max_iters': 10, 'train_cfg.val_interval': 1e3,
                                        'default_hooks.checkpoint.by_epoch': True,
                                        'param_scheduler.0.end': 5, 'load_from': None,
                                        'new_key.depth': 'any'})
    assert cfg.train_cfg.max_iters == 10 and cfg.param_scheduler[0].end == 5


# -- the checkpoint's classes against the config's ------------------------------

def _load_tool(path):
    name = 'mmsnnmlp_tool_typos_' + osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Stop(Exception):
    """Raised where the tool would build the model."""


def _checkpoint(tmp_path, classes):
    path = tmp_path / 'model.pth'
    meta = {} if classes is None else {'dataset_meta': {'classes': classes}}
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': meta}, path)
    return str(path)


def _stop(*args, **kwargs):
    raise Stop


def _tool_warnings(run):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with pytest.raises(Stop):
            run()
    return [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)]


@pytest.mark.parametrize('classes, expected', [
    (TOY_CLASSES, None),
    (None, None),  # no dataset_meta: nothing to compare
    (['square', 'circle', 'triangle'], 'in another order'),
    (['circle', 'square'], 'different'),
])
def test_test_tool_warns_when_the_classes_differ(monkeypatch, tmp_path, classes, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('LOCAL_RANK', '0')
    test_tool = _load_tool('tools/test.py')
    monkeypatch.setattr(test_tool, 'build_runner', _stop)
    checkpoint = _checkpoint(tmp_path, classes)
    found = _tool_warnings(lambda: test_tool.main([DET, checkpoint, '--no-data-check',
                                                   '--work-dir', str(tmp_path / 'w')]))
    if expected is None:
        assert found == []
    else:
        assert found == [f"The classes of {checkpoint} (its dataset_meta) and of the config's "
                         f'test_dataloader are {expected}: predictions are scored and named by '
                         f"the config's order. Checkpoint: {tuple(classes)}; config: "
                         f'{tuple(TOY_CLASSES)}']


def test_dataset_class_defaults_count_as_the_config_classes(monkeypatch, tmp_path):
    """A config without metainfo uses its dataset class's classes (ADE20K's 150)."""
    from mmsnnmlp.engine.launch import warn_if_classes_differ
    cfg = load_config(osp.join(ROOT, 'configs/seg/snnmlp-t_upernet_8xb2-160k_ade20k-512x512.py'))
    from mmseg.datasets import ADE20KDataset
    classes = list(ADE20KDataset.METAINFO['classes'])
    with warnings.catch_warnings():
        warnings.simplefilter('error', ConfigWarning)
        warn_if_classes_differ(cfg, {'meta': {'dataset_meta': {'classes': classes}}}, 'x.pth')
    classes[0], classes[1] = classes[1], classes[0]
    with pytest.warns(ConfigWarning, match='in another order'):
        warn_if_classes_differ(cfg, {'meta': {'dataset_meta': {'classes': classes}}}, 'x.pth')


def test_demo_warns_when_the_classes_differ(monkeypatch, tmp_path):
    demo = _load_tool('tools/demo/image_demo.py')
    monkeypatch.setattr(demo, 'run_detection', _stop)
    image = tmp_path / 'in.jpg'
    cv2.imwrite(str(image), np.full((32, 32, 3), 128, np.uint8))
    checkpoint = _checkpoint(tmp_path, ['triangle', 'square', 'circle'])
    found = _tool_warnings(lambda: demo.main([str(image), DET, checkpoint, '--out-file',
                                              str(tmp_path / 'out.jpg')]))
    assert len(found) == 1 and 'in another order' in found[0]
