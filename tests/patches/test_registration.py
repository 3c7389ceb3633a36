"""One registration (mmengine's root registries) serves mmdet, mmseg and their
inferencers; `import mmsnnmlp` survives broken or missing mmdet/mmseg/timm."""
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.registry import HOOKS, MODELS, DefaultScope

import mmsnnmlp  # noqa: F401
from mmsnnmlp.engine import CPUSyncBatchNorm, RNGStateHook, SafeCheckpointHook
from mmsnnmlp.models import SNNMLP

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = {'mmdet': osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py'),
       'mmseg': osp.join(ROOT, 'configs/toy/snnmlp-toy_upernet_toy-ade.py')}


def _run(code, env_path=None):
    env = None
    if env_path is not None:
        import os
        env = dict(os.environ, PYTHONPATH=f'{env_path}{osp.pathsep}{ROOT}')
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True,
                          text=True, env=env)


def test_registered_once_in_mmengine_root():
    assert MODELS.module_dict['SNNMLP'] is SNNMLP
    assert MODELS.module_dict['CPUSyncBN'] is CPUSyncBatchNorm
    assert HOOKS.module_dict['RNGStateHook'] is RNGStateHook
    assert HOOKS.module_dict['SafeCheckpointHook'] is SafeCheckpointHook
    from mmdet.registry import MODELS as DET_MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    for child in (DET_MODELS, SEG_MODELS):
        assert child.parent is MODELS  # they fall back to the root
        assert 'SNNMLP' not in child.module_dict  # no second registration


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_build_through_library_registries(scope):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS', 'HOOKS'])
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.MODELS.build(dict(type='SNNMLP',
                                           arch=dict(embed_dims=8, depths=(1, 1, 1, 1)),
                                           out_indices=(0, 3)))
        norm = registry.MODELS.build(dict(type='CPUSyncBN', num_features=4))
        hook = registry.HOOKS.build(dict(type='SafeCheckpointHook', interval=2))
        rng = registry.HOOKS.build(dict(type='RNGStateHook'))
    assert isinstance(model, SNNMLP) and isinstance(norm, CPUSyncBatchNorm)
    assert isinstance(hook, SafeCheckpointHook) and hook.interval == 2
    assert isinstance(rng, RNGStateHook)
    assert [o.shape[1] for o in model(torch.randn(1, 3, 32, 32))] == [8, 64]


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_inferencers_build_our_configs(scope):
    if scope == 'mmdet':
        from mmdet.apis import DetInferencer as Inferencer
    else:
        from mmseg.apis import MMSegInferencer as Inferencer
    inferencer = Inferencer(model=TOY[scope], weights=None, device='cpu')
    assert isinstance(inferencer.model.backbone, SNNMLP)


def test_core_works_without_mmdet_or_mmseg():
    """With both libraries unimportable, the backbone and LIF op still work."""
    out = _run("""
        import sys
        sys.modules['mmdet'] = None  # makes `import mmdet` raise ImportError
        sys.modules['mmseg'] = None
        import torch, mmsnnmlp
        from mmsnnmlp.models import SNNMLP
        from mmsnnmlp.ops import lif
        outs = SNNMLP(dict(embed_dims=8, depths=(1, 1, 1, 1)))(torch.randn(1, 3, 32, 32))
        lif(torch.randn(1, 2, 8, 8), 0.25, 0.1)
        print(len(outs))
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '4'


@pytest.mark.parametrize('missing', ['mmdet', 'mmseg'])
def test_only_one_library_installed(missing):
    present = 'mmseg' if missing == 'mmdet' else 'mmdet'
    out = _run(f"""
        import sys
        sys.modules['{missing}'] = None
        import mmsnnmlp
        from mmengine.registry import DefaultScope
        from {present}.registry import MODELS
        with DefaultScope.overwrite_default_scope('{present}'):
            print(type(MODELS.build(dict(type='SNNMLP', arch='t'))).__name__)
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == 'SNNMLP'


def test_import_survives_libraries_that_raise(tmp_path):
    """mmdet/mmseg refuse an mmcv they don't support with AssertionError at
    import; mmsnnmlp and its ops must not care."""
    for name in ('mmdet', 'mmseg'):
        (tmp_path / name).mkdir()
        (tmp_path / name / '__init__.py').write_text(
            "raise AssertionError('MMCV==2.2.0 is used but incompatible')\n")
    out = _run("""
        import warnings
        warnings.simplefilter('error')  # nothing to warn about: they are never imported
        import torch, mmsnnmlp
        from mmsnnmlp.ops import lif
        print(lif(torch.randn(1, 2, 8, 8), 0.25, 0.1).shape)
        try:
            import mmdet
        except AssertionError as err:
            print('mmdet raises:', err)
    """, env_path=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'torch.Size([1, 2, 8, 8])' in out.stdout and 'mmdet raises: MMCV==2.2.0' in out.stdout


def test_broken_timm_gives_one_warning(tmp_path):
    (tmp_path / 'timm').mkdir()
    (tmp_path / 'timm' / '__init__.py').write_text("__version__ = '0.0.broken'\n")
    out = _run("""
        import warnings
        import mmsnnmlp
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            import timm
        ours = [str(w.message) for w in caught if 'mmsnnmlp' in str(w.message)]
        print(len(ours), ours[0] if ours else '')
    """, env_path=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    count, message = out.stdout.strip().split(' ', 1)
    assert count == '1' and 'timm 0.0.broken' in message


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_custom_imports_in_config(tmp_path, scope):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(textwrap.dedent(f"""
        custom_imports = dict(imports=['mmsnnmlp'], allow_failed_imports=False)
        default_scope = '{scope}'
        backbone = dict(type='SNNMLP', arch='tiny', out_indices=(3,))
    """))
    out = _run(f"""
        import sys
        from mmengine.config import Config
        from mmengine.registry import DefaultScope
        from {scope}.registry import MODELS
        assert 'mmsnnmlp' not in sys.modules
        cfg = Config.fromfile({str(cfg)!r})
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            m = MODELS.build(cfg.backbone)
        print(type(m).__module__, type(m).__name__)
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ['mmsnnmlp.models.snnmlp', 'SNNMLP']


@pytest.mark.parametrize('first', ['mmsnnmlp', 'timm'])
def test_timm_models_registered_whichever_imports_first(first):
    second = 'timm' if first == 'mmsnnmlp' else 'mmsnnmlp'
    out = _run(f"""
        import sys
        import {first}
        lazy = 'timm' not in sys.modules  # mmsnnmlp alone does not import timm
        import {second}
        import timm
        print(lazy, [timm.is_model(f'snnmlp_{{v}}') for v in ('tiny', 'small', 'base')])
    """)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split('\n')[-2] == f"{first == 'mmsnnmlp'} [True, True, True]"
