"""tools/analysis_tools/gpu_report.py runs end to end on CPU (tiny shapes,
every code path) and imports without mmcv, mmdet and mmseg."""
import json
import os.path as osp
import subprocess
import sys

from helpers.tools import run_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool(name, *args, env=None):
    return run_tool(osp.join('analysis_tools', name), *args, env=env)


def test_gpu_report_quick_on_cpu(tmp_path):
    _tool('gpu_report.py', '--device', 'cpu', '--quick', '--out-dir', tmp_path)
    report = json.loads((tmp_path / 'report.json').read_text())
    assert 'errors' not in report
    assert report['environment']['device'] == 'cpu'
    summary = report['checks_summary']
    assert summary['failed'] == 0 and summary['cases'] >= 10
    assert report['selfcheck_summary'] == dict(probes=2, failed=0)
    assert {(r['op'], r['dtype'], r['ok'], r['auto']) for r in report['selfcheck']} == {
        ('lif', 'float32', True, 'torch'), ('norm_act', 'float32', True, 'torch')}
    assert all(r['cases'] >= 2 and r['first_ms'] > 0 for r in report['selfcheck'])
    kernels = {row['kernel'] for row in report['checks']}
    assert {'lif', 'norm_act', 'SNNMLP-T compiled'} <= kernels
    ops = {(row['op'], row['impl'], row['mode']) for row in report['ops']}
    for op in ('lif along H', 'lif along W', 'norm_act', 'norm_act gelu'):
        for impl in ('triton', 'torch', 'reference'):
            assert {(op, impl, 'fwd'), (op, impl, 'fwd+bwd')} <= ops
    assert ('copy', 'torch', 'fwd') in ops
    settings = {(r['task'], r['model'], r['mode'], r['dtype'], r['compiled'])
                for r in report['models']}
    for model in ('snnmlp-t', 'swin-t'):
        for task in ('cls', 'det'):
            for mode in ('fwd', 'train'):
                assert {(task, model, mode, 'fp32', False), (task, model, mode, 'bf16', False)} \
                    <= settings
    assert ('det', 'snnmlp-t', 'fwd', 'fp32', True) in settings  # quick: compiled forward only
    assert all(r['median_ms'] > 0 and r['params_m'] > 20 for r in report['models'])
    markdown = (tmp_path / 'report.md').read_text()
    for title in ('## Self-check', '## Kernel checks', '## LIF and norm_act alone',
                  '## Backbones'):
        assert title in markdown
    assert '| snnmlp-t | mmsnnmlp |' in markdown and '| swin-t | timm |' in markdown


def test_gpu_report_imports_without_mmcv_mmdet_mmseg():
    """The GPU machine has torch, triton, timm (and carried mmengine) only."""
    code = f'''
import importlib.util, sys
for name in ('mmcv', 'mmdet', 'mmseg'):
    sys.modules[name] = None  # import fails as if not installed
spec = importlib.util.spec_from_file_location(
    'gpu_report', {osp.join(ROOT, 'tools/analysis_tools/gpu_report.py')!r})
spec.loader.exec_module(importlib.util.module_from_spec(spec))
import mmsnnmlp.models
from mmsnnmlp.analysis import baselines as benchmark
model, note = benchmark.build_backbone('swin-t', (1, 3, 64, 64), baselines='auto')
assert note == 'timm', note
print('ok')
'''
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip().endswith('ok'), out.stderr[-3000:]
