"""What `import mmsnnmlp` changes in mmengine, torch and timm: one list of
patches, each installed once, each skippable with MMSNNMLP_NO_PATCHES."""
import ast
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest

import mmsnnmlp
from mmsnnmlp import patches

PATCH_DIR = osp.dirname(patches.__file__)

# Reports, in a fresh process, which patches are in effect after `import
# mmsnnmlp` and a first import of what they patch (mmengine's runner and
# checkpoint module, timm), and that our registrations do not depend on them.
PROBE = textwrap.dedent('''
    import json, sys
    import torch
    import mmsnnmlp
    from mmengine.config import config as mmengine_config, utils as config_utils
    from mmengine.fileio import backends
    from mmengine.registry import HOOKS, MODELS
    from mmengine.runner import checkpoint as ckpt
    import timm
    from mmseg.visualization.local_visualizer import SegLocalVisualizer
    from mmsnnmlp.checkpoint.reading import TORCH_ALLOWLIST, _torch_safe_globals
    ours = 'mmsnnmlp.patches.mmengine_checkpoint'
    state = {
        'mmengine_checkpoint': [ckpt.CheckpointLoader._schemes[''].__module__ == ours,
                                ckpt.CheckpointLoader._schemes['https://'].__module__ == ours,
                                ckpt.load_from_http.__module__ == ours],
        'mmengine_fileio': [backends.backends['local'].__name__ == 'AtomicLocalBackend'],
        'mmengine_config': ['mmsnnmlp' in config_utils.MODULE2PACKAGE,
                            getattr(mmengine_config.get_installed_path, 'mmsnnmlp_fallback',
                                    False)],
        'torch_allowlist': [TORCH_ALLOWLIST and all(
            g in torch.serialization.get_safe_globals() for g in _torch_safe_globals())],
        'timm_models': [timm.is_model('snnmlp_tiny')],
        'mmseg_visualizer': [getattr(SegLocalVisualizer._draw_sem_seg, 'mmsnnmlp_contiguous',
                                     False)],
        'registered': ['SNNMLP' in MODELS.module_dict, 'CPUSyncBN' in MODELS.module_dict,
                       'SafeCheckpointHook' in HOOKS.module_dict,
                       'RNGStateHook' in HOOKS.module_dict],
    }
    print(json.dumps({k: all(v) for k, v in state.items()}))
''')


def _probe(value):
    env = dict(os.environ)
    env.pop('MMSNNMLP_NO_PATCHES', None)
    if value is not None:
        env['MMSNNMLP_NO_PATCHES'] = value
    out = subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True, env=env,
                         timeout=600)
    return out


def _installed(value):
    out = _probe(value)
    assert out.returncode == 0, out.stderr[-3000:]
    state = json.loads(out.stdout.strip().splitlines()[-1])
    assert state.pop('registered'), 'registration must not depend on the patches'
    if not __import__('mmsnnmlp.checkpoint.reading', fromlist=['x']).TORCH_ALLOWLIST:
        state.pop('torch_allowlist')  # nothing to install before torch 2.6
    return {name for name, on in state.items() if on}


def test_patch_list_is_the_package():
    """PATCHES names every patch module, and install() calls each one's install once."""
    modules = sorted(f[:-3] for f in os.listdir(PATCH_DIR)
                     if f.endswith('.py') and not f.startswith('_'))
    assert sorted(patches.PATCHES) == modules
    for name in modules:
        assert callable(getattr(getattr(patches, name), 'install'))
    tree = ast.parse(open(osp.join(PATCH_DIR, '__init__.py')).read())
    install = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == 'install')
    called = [f'{c.func.value.id}' for c in ast.walk(install) if isinstance(c, ast.Call)
              and isinstance(c.func, ast.Attribute) and c.func.attr == 'install']
    assert sorted(called) == modules


def test_all_patches_installed_by_default():
    assert _installed(None) == set(patches.PATCHES)


@pytest.mark.parametrize('value', ['1', 'all'])
def test_opt_out_of_all(value):
    """mmengine's loaders, backend and config lookup stay mmengine's own;
    torch's allowlist and timm are untouched; registration still happens."""
    assert _installed(value) == set()


def test_opt_out_of_some():
    assert _installed('mmengine_checkpoint, timm_models') == \
        set(patches.PATCHES) - {'mmengine_checkpoint', 'timm_models'}


def test_unknown_patch_name_names_the_valid_ones():
    out = _probe('mmengine_checkpiont')
    assert out.returncode != 0
    assert "MMSNNMLP_NO_PATCHES='mmengine_checkpiont': unknown patch name(s) " \
           'mmengine_checkpiont' in out.stderr
    assert ', '.join(patches.PATCHES) in out.stderr


@pytest.mark.parametrize('value, skipped', [
    ('', set()), ('0', set()), ('all', set(patches.PATCHES)), ('1', set(patches.PATCHES)),
    ('timm_models', {'timm_models'}), (' mmengine_fileio ,torch_allowlist,',
                                       {'mmengine_fileio', 'torch_allowlist'})])
def test_env_values(value, skipped):
    assert patches.skipped(value) == skipped


def test_install_and_register_are_idempotent():
    from mmengine.fileio import backends
    from mmengine.registry import HOOKS, MODELS
    from mmengine.runner import checkpoint as ckpt
    before = (list(sys.meta_path), dict(ckpt.CheckpointLoader._schemes),
              dict(backends.backends), dict(MODELS.module_dict), dict(HOOKS.module_dict))
    assert patches.install() == set(patches.PATCHES)
    patches.install()
    mmsnnmlp.registration.register_all()
    after = (list(sys.meta_path), dict(ckpt.CheckpointLoader._schemes),
             dict(backends.backends), dict(MODELS.module_dict), dict(HOOKS.module_dict))
    assert after == before


def test_import_loads_no_cv2_pil_or_libraries():
    """mmengine.hooks and mmengine.runner import cv2: what needs them waits
    for their first import."""
    code = ('import sys, mmsnnmlp; print(sorted(m for m in ("cv2", "PIL", "mmdet", "mmseg", '
            '"timm", "mmengine.hooks", "mmengine.runner") if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[]'


def test_mmseg_visualizer_draws_labels_on_a_non_contiguous_image():
    """mmseg's browse_dataset.py passes a permuted, channel-flipped view; with
    the patch the class labels are drawn into it instead of raising cv2.error."""
    import numpy as np
    import torch
    from mmengine.structures import PixelData
    from mmseg.visualization import SegLocalVisualizer

    chw = np.zeros((3, 40, 60), np.uint8)
    image = chw.transpose(1, 2, 0)[..., [2, 1, 0]]  # what browse_dataset.py hands over
    assert not image.flags['C_CONTIGUOUS']
    seg = torch.zeros(1, 40, 60, dtype=torch.long)
    seg[0, 10:30, 20:50] = 1
    drawn = SegLocalVisualizer(name='patch_probe')._draw_sem_seg(
        image, PixelData(data=seg), classes=['bg', 'thing'], palette=[[0, 0, 0], [255, 0, 0]],
        with_labels=True)
    assert drawn.shape == (40, 60, 3) and drawn[20, 35].any()
