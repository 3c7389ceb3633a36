"""ONNX export of the SNN-MLP backbone: standard ops only, dynamic batch/H/W,
parity with PyTorch in ONNX Runtime (float64 and float32) and OpenVINO."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from mmsnnmlp.deployment import ExportError, exportable, export_onnx  # noqa: E402
from mmsnnmlp.deployment.exportable import _adaptive_avg_pool_forward  # noqa: E402
from mmsnnmlp.deployment.parity import compare, report, within_float32_bound  # noqa: E402
from mmsnnmlp.deployment.runtime import Runner, run_torch  # noqa: E402
from mmsnnmlp.models import SNNMLP  # noqa: E402
from mmsnnmlp.ops import LIF, NormAct  # noqa: E402

# Odd sizes, tails of every group size, a stage smaller than the group (8x8:
# stages of 2 and 1 rows), batch 1..3; the export itself sees (2, 3, 67, 93).
SIZES = [(2, 3, 67, 93), (1, 3, 101, 75), (3, 3, 64, 64), (1, 3, 33, 45), (1, 3, 8, 8)]
OUT_NAMES = [f'stage{i}' for i in range(4)]


def toy_backbone(**kwargs):
    model = SNNMLP(arch=dict(embed_dims=16, depths=(1, 1, 1, 1)), drop_path_rate=0.0,
                   **kwargs)
    model.init_weights()
    return model.eval()


def _check_runs(path, model, sizes, dtype=torch.float32, backend='onnxruntime'):
    runner = Runner(path, backend)
    parities = []
    for shape in sizes:
        x = torch.randn(*shape, dtype=dtype)
        ref = run_torch(model, [x])
        out = runner(x)
        assert [o.shape for o in out] == [r.shape for r in ref]
        parities += compare(out, ref, [f'{n} {shape[2]}x{shape[3]}' for n in OUT_NAMES])
    print(report(parities, f'{backend} vs PyTorch ({dtype})'))
    return parities


@pytest.mark.parametrize('group', [2, 4, 7, None])
def test_torchscript_export_groups(tmp_path, group):
    model = toy_backbone(lif_group=group)
    info = export_onnx(model, torch.randn(SIZES[0]), str(tmp_path / 'b.onnx'),
                       output_names=OUT_NAMES, opset=17)
    assert info['domains'] == [''] and info['opset'] == 17
    # the global recurrence is a loop over the axis read at run time, not unrolled
    assert ('Loop' in info['op_types']) == (group is None)
    # ONNX Runtime runs Where with a broadcast scalar slowly: the LIF avoids it;
    # the affine of every norm before a 1x1 conv (3 per block, 1 per merging) is folded
    assert 'Where' not in info['op_types'] and info['folded'] == 3 * 4 + 3
    parities = _check_runs(info['path'], model, SIZES)
    assert within_float32_bound(parities)
    assert max(p.max_rel for p in parities) < 1e-3


def test_opset18_fixed_tau_vth_and_any_batch(tmp_path):
    model = toy_backbone(lif_group=4, lif_fix_tau=True, lif_fix_vth=True, lif_tau=0.3,
                         lif_vth=0.2)
    info = export_onnx(model, torch.randn(1, 3, 40, 56), str(tmp_path / 'b.onnx'),
                       output_names=OUT_NAMES, opset=18)
    assert info['domains'] == [''] and info['opset'] == 18
    assert within_float32_bound(_check_runs(info['path'], model, SIZES[:3]))


@pytest.mark.parametrize('group', [4, None])
def test_float64_equals_pytorch(tmp_path, group):
    """One float64 graph (dynamic batch, H and W) equals PyTorch at every size."""
    model = toy_backbone(lif_group=group).double()
    info = export_onnx(model, torch.randn(SIZES[0], dtype=torch.float64),
                       str(tmp_path / 'b.onnx'), output_names=OUT_NAMES)
    assert info['domains'] == [''] and not info['static']
    parities = _check_runs(info['path'], model, SIZES, dtype=torch.float64)
    assert max(p.max_abs for p in parities) <= 1e-9


def test_openvino_runs_the_same_file(tmp_path):
    pytest.importorskip('openvino')
    model = toy_backbone(lif_group=4)
    info = export_onnx(model, torch.randn(SIZES[0]), str(tmp_path / 'b.onnx'),
                       output_names=OUT_NAMES)
    parities = _check_runs(info['path'], model, SIZES[:2], backend='openvino')
    assert within_float32_bound(parities)


@pytest.mark.parametrize('group,dim', [(4, 3), (None, 2)])
def test_dynamo_exports_lif(tmp_path, group, dim):
    """The dynamo exporter: grouped LIF unrolled, global LIF as an ONNX Scan."""
    model = LIF(dim=dim, group=group).eval()
    info = export_onnx(model, torch.randn(2, 3, 17, 24), str(tmp_path / 'l.onnx'),
                       exporter='dynamo', opset=18)
    assert info['domains'] == ['']
    assert ('Scan' in info['op_types']) == (group is None)
    runner = Runner(info['path'])
    for shape in [(2, 3, 17, 24), (1, 3, 9, 13), (1, 3, 3, 2), (3, 3, 20, 21)]:
        x = torch.randn(shape)
        np.testing.assert_array_equal(runner(x)[0], model(x).detach().numpy())


@pytest.mark.slow
def test_dynamo_exports_backbone(tmp_path):
    model = toy_backbone(lif_group=4)
    info = export_onnx(model, torch.randn(SIZES[0]), str(tmp_path / 'b.onnx'),
                       output_names=OUT_NAMES, exporter='dynamo', opset=18)
    assert info['domains'] == ['']
    assert within_float32_bound(_check_runs(info['path'], model, SIZES))


def test_with_cp_in_training_mode_is_a_clear_error(tmp_path):
    model = toy_backbone(with_cp=True).train()
    with pytest.raises(ExportError, match='with_cp=True'):
        export_onnx(model, torch.randn(1, 3, 32, 32), str(tmp_path / 'b.onnx'))
    model.eval()  # checkpointing does not run in eval mode: that exports
    info = export_onnx(model, torch.randn(1, 3, 32, 32), str(tmp_path / 'b.onnx'))
    assert info['domains'] == ['']


def test_exportable_restores_the_model():
    model = toy_backbone(lif_group=None, impl='torch')
    x = torch.randn(1, 3, 45, 37)
    with torch.no_grad():
        before = model(x)
        with exportable(model):
            inside = model(x)
            assert all(m.impl == 'reference' for m in model.modules()
                       if isinstance(m, (LIF, NormAct)))
        after = model(x)
    for b, i, a in zip(before, inside, after):
        torch.testing.assert_close(i, b)
        assert torch.equal(a, b)
    assert all(m.impl == 'torch' for m in model.modules() if isinstance(m, (LIF, NormAct)))
    assert all('forward' not in vars(m) for m in model.modules())


@pytest.mark.parametrize('size,out', [((7, 5), 3), ((12, 9), 6), ((4, 4), (2, 3)),
                                      ((5, 11), 1)])
def test_exportable_adaptive_pool_matches_pytorch(size, out):
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    pool = nn.AdaptiveAvgPool2d(out)
    torch.testing.assert_close(_adaptive_avg_pool_forward(pool, x),
                               F.adaptive_avg_pool2d(x, out))
