"""Packaged like an OpenMMLab library: configs under mmsnnmlp/.mim (so users
inherit `mmsnnmlp::...`), model-index.yml + metafiles whose figures match
get_flops, and a non-editable install that runs the main job's steps."""
import glob
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest
import yaml

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/det/*.py')) +
                 glob.glob(osp.join(ROOT, 'configs/seg/*.py')))


def metafile_models():
    index = yaml.safe_load(open(osp.join(ROOT, 'model-index.yml')))
    models = {}
    for meta in index['Import']:
        for model in yaml.safe_load(open(osp.join(ROOT, meta)))['Models']:
            models[model['Name']] = model
    return models


def _run(code, cwd, pythonpath=None):
    env = dict(os.environ)
    if pythonpath:
        env['PYTHONPATH'] = pythonpath
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_metafiles_list_every_config_once():
    models = metafile_models()
    assert sorted(m['Config'] for m in models.values()) == \
        sorted(osp.relpath(c, ROOT) for c in CONFIGS)
    from mmengine.config import Config
    for name, model in models.items():
        assert osp.basename(model['Config']) == name + '.py'
        cfg = Config.fromfile(osp.join(ROOT, model['Config']))
        meta = model['Metadata']
        assert meta['Pretrained'] == cfg.model.backbone.init_cfg.checkpoint
        assert meta['Training Resources'] == '8x GPUs, 2 images each'
        if 'Results' in model:
            assert 'paper' in meta['Results Source']


def test_user_config_inherits_shipped_configs(tmp_path):
    (tmp_path / 'my_det.py').write_text(
        "_base_ = ['mmsnnmlp::det/mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py']\n"
        "model = dict(backbone=dict(drop_path_rate=0.1))\n")
    (tmp_path / 'my_seg.py').write_text(
        "_base_ = 'mmsnnmlp::seg/snnmlp-s_upernet_8xb2-160k_ade20k-512x512.py'\n"
        "train_dataloader = dict(batch_size=4)\n")
    out = _run("""
        import mmsnnmlp
        from mmengine.config import Config
        det, seg = Config.fromfile('my_det.py'), Config.fromfile('my_seg.py')
        print(det.model.backbone.type, det.model.backbone.drop_path_rate,
              det.default_hooks.checkpoint.type, seg.model.backbone.arch,
              seg.train_dataloader.batch_size)
    """, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ['SNNMLP', '0.1', 'SafeCheckpointHook', 'small', '4']
    # mmengine resolves `_base_` before `custom_imports`: without mmsnnmlp imported
    # first (e.g. mmdet's own train.py) the prefix is unknown -- as the README says
    out = _run("from mmengine.config import Config; Config.fromfile('my_det.py')", tmp_path)
    assert out.returncode != 0 and 'does not support to load mmsnnmlp config' in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize('name', ['mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco',
                                  'snnmlp-t_upernet_8xb2-160k_ade20k-512x512'])
def test_metafile_figures_match_get_flops(name):
    """FLOPs and params as get_flops.py measures them (the T configs: the
    others take minutes each; test_configs.py checks every config's
    params against the metafile)."""
    sys.path.insert(0, osp.join(ROOT, 'tools/analysis_tools'))
    try:
        import get_flops
    finally:
        sys.path.pop(0)
    model = metafile_models()[name]
    cfg = get_flops.load_config(osp.join(ROOT, model['Config']))
    shape = (800, 1280) if cfg.default_scope == 'mmdet' else (512, 2048)
    result = get_flops.complexity(cfg, *shape)
    assert f'{result["flops"] / 1e9:.1f}G' == model['Metadata']['FLOPs']
    assert f'{result["params"] / 1e6:.2f}M' == model['Metadata']['Parameters']


def _copy_source(dst):
    ignore = shutil.ignore_patterns('.git', '.venv*', 'work_dirs', 'data', 'build', 'dist',
                                    '*.egg-info', '__pycache__', '.mim', '.pytest_cache',
                                    '.hypothesis', '.whl')
    shutil.copytree(ROOT, dst, ignore=ignore, symlinks=False)


@pytest.mark.slow
def test_wheel_install_runs_from_anywhere(tmp_path):
    src = tmp_path / 'src'
    _copy_source(src)
    build = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                            '--no-build-isolation', '-w', str(tmp_path / 'dist'), str(src)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = glob.glob(str(tmp_path / 'dist/mmsnnmlp-*.whl'))[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    for config in CONFIGS + glob.glob(osp.join(ROOT, 'configs/toy/*.py')):
        assert f'mmsnnmlp/.mim/{osp.relpath(config, ROOT)}' in names
    for shipped in ('model-index.yml', 'configs/det/metafile.yml', 'configs/seg/metafile.yml',
                    'configs/det/_base_/snnmlp_coco-instance_ms-crop-3x.py', 'tools/train.py',
                    'tools/test.py', 'tools/dist_train.sh', 'tools/misc/make_toy_data.py',
                    'tools/demo/image_demo.py', 'tools/analysis_tools/get_flops.py'):
        assert f'mmsnnmlp/.mim/{shipped}' in names, shipped
    assert not any(n.endswith(('install.sh', 'run_tests.sh')) or '/tests/' in n for n in names)
    assert not any(n.startswith(('tests/', 'configs/', 'tools/')) for n in names)

    site = tmp_path / 'site'
    install = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
                              '--target', str(site), wheel], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    shutil.rmtree(src)  # nothing may come from the source tree any more
    tools = site / 'mmsnnmlp/.mim/tools'
    work = tmp_path / 'elsewhere'
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))

    def step(*args):
        out = subprocess.run([sys.executable, *map(str, args)], cwd=work, env=env,
                             capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, f'{args}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}'
        return out

    out = step('-c', 'import mmsnnmlp; print(mmsnnmlp.__file__)')
    assert out.stdout.strip().startswith(str(site))
    step(tools / 'misc/make_toy_data.py', '--out', 'data/toy', '--num-train', 2, '--num-val', 1,
         '--size', 64)
    config = 'mmsnnmlp::toy/snnmlp-toy_upernet_toy-ade.py'
    step(tools / 'train.py', config, '--work-dir', 'w', '--cfg-options',
         'train_cfg.max_iters=1', 'train_cfg.val_interval=100', 'train_dataloader.batch_size=2',
         'default_hooks.checkpoint.interval=1')
    step(tools / 'test.py', config, 'w/iter_1.pth', '--work-dir', 'w', '--metrics-json',
         'metrics.json')
    assert (work / 'metrics.json').is_file()

    # openmim finds the installed package (test_mim.py: the editable install)
    if importlib.util.find_spec('mim') is None:
        return
    assert any(line.split()[:1] == ['mmsnnmlp'] for line in step('-m', 'mim', 'list')
               .stdout.splitlines())
    assert 'config id: mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco' in \
        step('-m', 'mim', 'search', 'mmsnnmlp').stdout
    out = step('-m', 'mim', 'run', 'mmsnnmlp', 'make_toy_data', '--out', 'data/mim',
               '--num-train', 1, '--num-val', 1, '--size', 64)
    assert str(tools / 'misc/make_toy_data.py') in out.stdout
    out = step('-m', 'mim', 'train', 'mmsnnmlp', osp.basename(config), '--work-dir', 'm',
               '--cfg-options', 'train_cfg.max_iters=1', 'train_cfg.val_interval=100',
               'train_dataloader.batch_size=2', 'default_hooks.checkpoint.interval=1')
    assert str(site / 'mmsnnmlp/.mim/configs/toy') in out.stdout
    step('-m', 'mim', 'test', 'mmsnnmlp', osp.basename(config), '--checkpoint', 'm/iter_1.pth',
         '--work-dir', 'm', '--metrics-json', 'mim_metrics.json')
    assert (work / 'mim_metrics.json').is_file()
