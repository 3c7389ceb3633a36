"""The inference APIs take grayscale, RGBA, tiny and elongated images (slow)."""
import os.path as osp
import runpy
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmsnnmlp  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {'mmdet': osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py'),
           'mmseg': osp.join(ROOT, 'configs/toy/snnmlp-toy_upernet_toy-ade.py')}
pytestmark = pytest.mark.slow


def _checkpoint(tmp_path, library):
    """Random weights in mmengine's checkpoint layout, with the toy classes."""
    cfg = Config.fromfile(CONFIGS[library])
    registry = __import__(f'{library}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(library):
        model = registry.build(cfg.model)
    model.init_weights()
    path = tmp_path / f'{library}.pth'
    meta = dict(cfg.train_dataloader.dataset.metainfo)
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': meta}}, path)
    return str(path)


def _images(tmp_path):
    rng = np.random.default_rng(0)
    images = {
        'gray.png': rng.integers(0, 255, (70, 90), dtype=np.uint8),
        'rgba.png': rng.integers(0, 255, (64, 48, 4), dtype=np.uint8),
        'tiny.png': rng.integers(0, 255, (3, 5, 3), dtype=np.uint8),
        'elongated.jpg': rng.integers(0, 255, (17, 900, 3), dtype=np.uint8),
    }
    for name, img in images.items():
        cv2.imwrite(str(tmp_path / name), img)
    return [tmp_path / n for n in images]


@pytest.mark.parametrize('library', ['mmdet', 'mmseg'])
def test_odd_images(tmp_path, library, capsys):
    ckpt = _checkpoint(tmp_path, library)
    demo = osp.join(ROOT, 'tools/demo/image_demo.py')
    for image in _images(tmp_path):
        for api in ('functional', 'inferencer'):
            out = tmp_path / f'{image.stem}_{api}.png'
            sys.argv = [demo, str(image), CONFIGS[library], ckpt, '--api', api,
                        '--out-file', str(out), '--score-thr', '0']
            runpy.run_path(demo, run_name='__main__')
            drawn = cv2.imread(str(out))
            assert drawn is not None and drawn.shape[2] == 3, (image, api)
            assert 'saved to' in capsys.readouterr().out
