import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.registry import DefaultScope

import mmsnnmlp
from mmsnnmlp.models import SNNMLP


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_build_through_registry(scope):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    assert scope in mmsnnmlp.REGISTERED_IN
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(dict(type='SNNMLP', arch=dict(embed_dims=8, depths=(1, 1, 1, 1)),
                                    out_indices=(0, 3)))
    assert isinstance(model, SNNMLP)
    assert [o.shape[1] for o in model(torch.randn(1, 3, 32, 32))] == [8, 64]


def test_core_works_without_mmdet_or_mmseg():
    """With both libraries unimportable, the backbone and LIF op still work."""
    code = textwrap.dedent("""
        import sys
        sys.modules['mmdet'] = None  # makes `import mmdet` raise ImportError
        sys.modules['mmseg'] = None
        import torch, mmsnnmlp
        from mmsnnmlp.models import SNNMLP
        from mmsnnmlp.ops import lif
        outs = SNNMLP(dict(embed_dims=8, depths=(1, 1, 1, 1)))(torch.randn(1, 3, 32, 32))
        lif(torch.randn(1, 2, 8, 8), 0.25, 0.1)
        print(mmsnnmlp.REGISTERED_IN, len(outs))
    """)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[] 4'


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_custom_imports_in_config(tmp_path, scope):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(textwrap.dedent(f"""
        custom_imports = dict(imports=['mmsnnmlp'], allow_failed_imports=False)
        default_scope = '{scope}'
        backbone = dict(type='SNNMLP', arch='tiny', out_indices=(3,))
    """))
    code = textwrap.dedent(f"""
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
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ['mmsnnmlp.models.snnmlp', 'SNNMLP']
