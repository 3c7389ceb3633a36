"""tools/deployment/export_onnx.py in its timm-classifier mode, run in this
process (a subprocess would spend most of its time importing)."""
import importlib.util
import os
import sys

import pytest
import torch

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')
pytest.importorskip('timm')

from helpers.released_layout import released_state_dict, training_checkpoint  # noqa: E402
from helpers.tools import ROOT  # noqa: E402


def _run_tool(monkeypatch, *args):
    spec = importlib.util.spec_from_file_location(
        'export_onnx_tool', os.path.join(ROOT, 'tools/deployment/export_onnx.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(sys, 'argv', ['export_onnx.py', *map(str, args)])
    tool.main()


@pytest.mark.parametrize('source', ['checkpoint', 'model-args'])
def test_classifier_mode_exports_and_compares(tmp_path, monkeypatch, capsys, source):
    """A toy SNN-MLP classifier (16 channels, one block per stage, 10 classes):
    from a checkpoint in the released training layout (the shape is read off
    it), or built from --model-args; compared at batch 1 and 2 (dynamic)."""
    torch.manual_seed(0)
    if source == 'checkpoint':
        path = tmp_path / 'toy_classifier.pt'
        path.write_bytes(training_checkpoint(
            released_state_dict(16, (1, 1, 1, 1), seed=3, num_classes=10)))
        args = ['--checkpoint', path]
    else:
        args = ['--model-args', 'embed_dim=16', 'depths=1,1,1,1', 'num_classes=10']
    _run_tool(monkeypatch, 'snnmlp_tiny', *args, '--size', '37x45', '--out', tmp_path / 'onnx')
    out = capsys.readouterr().out
    print(out)
    assert (tmp_path / 'onnx' / 'snnmlp_tiny.onnx').is_file()
    assert 'standard ops only' in out
    if source == 'checkpoint':
        assert 'a custom shape (embed_dim 16, depths (1, 1, 1, 1))' in out
    # one parity row per batch size, each with the logits' shape and the bound met
    assert "logits       (1, 10)" in out and "logits       (2, 10)" in out
    assert out.count('float32 bound (share off by > 1e-4 of scale below 0.1%): met') == 2


def test_benchmark_deploy_prints_runtimes_and_gemm_floor(tmp_path, monkeypatch, capsys):
    """tools/deployment/benchmark_deploy.py end to end on a small input: every
    runtime's column, the ratio to the last model, the dense-GEMM floor."""
    spec = importlib.util.spec_from_file_location(
        'benchmark_deploy_tool', os.path.join(ROOT, 'tools/deployment/benchmark_deploy.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(sys, 'argv', [
        'benchmark_deploy.py', '--models', 'snnmlp-t', 'snnmlp-t-nchw', '--shape', '1x3x64x64',
        '--repeats', '1', '--warmup', '0', '--threads', '1', '--gemm-floor',
        '--work-dir', str(tmp_path), '--markdown'])
    previous = torch.get_num_threads()
    try:
        tool.main()
    finally:
        torch.set_num_threads(previous)
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith('| model |'))
    assert 'onnxruntime ms' in header and 'dense GEMMs alone ms' in header
    assert 'ORT time / snnmlp-t-nchw ORT time' in header
    rows = [line for line in out.splitlines() if line.startswith('| snnmlp-t')]
    assert len(rows) == 2 and all('n/a' not in row for row in rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['snnmlp-t-nchw.onnx', 'snnmlp-t.onnx']
