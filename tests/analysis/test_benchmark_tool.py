"""The benchmark tool runs end to end on CPU (tiny shapes, every code path)."""
import json
import os.path as osp
import subprocess
import sys

from helpers.tools import run_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool(name, *args, env=None):
    return run_tool(osp.join('analysis_tools', name), *args, env=env)


def test_benchmark_times_the_timm_classifiers(tmp_path):
    """ImageNet img/s of the timm models, as get_throughput.sh measures it
    (tiny input here: only the code path is checked)."""
    out = tmp_path / 'bench.json'
    _tool('benchmark_backbone.py', '--device', 'cpu', '--shape', '2x3x64x64', '--models',
          'snnmlp_tiny', '--warmup', '0', '--iters', '1', '--json', out)
    (row,) = json.load(open(out))['models']
    assert row['model'] == 'snnmlp_tiny' and row['impl'] == 'timm classifier'
    assert row['params_m'] == 28.34 and row['img_per_s'] > 0


def test_benchmark_ops_on_channels_last(tmp_path):
    """The ops alone in the layout the backbone runs on CPU: each row names it,
    and the fused rows carry their speed-up over the reference by CPU time."""
    out = tmp_path / 'ops.json'
    text = _tool('benchmark_ops.py', '--device', 'cpu', '--shape', '1x16x40x36', '--channels-last',
                 '--warmup', '0', '--iters', '2', '--threads', '1', '--json', out)
    rows = json.load(open(out))['ops']
    assert {r['layout'] for r in rows} == {'channels_last'} and 'channels_last' in text
    with_speedup = {(r['op'], r['mode']) for r in rows
              if r['impl'] == 'torch' and r.get('x_ref_cpu', 0) > 0}
    assert with_speedup == {(r['op'], r['mode']) for r in rows if r['op'] != 'copy'}


def test_benchmark_backbone_nchw_variant_and_freeze_needs_compile(tmp_path):
    out = tmp_path / 'bench.json'
    _tool('benchmark_backbone.py', '--device', 'cpu', '--shape', '1x3x64x64', '--models',
          'snnmlp-t-nchw', '--warmup', '0', '--iters', '1', '--json', out)
    (row,) = json.load(open(out))['models']
    assert row['model'] == 'snnmlp-t-nchw' and row['impl'] == 'mmsnnmlp, NCHW inside'
    refused = subprocess.run([sys.executable, osp.join(ROOT, 'tools/analysis_tools/'
                                                       'benchmark_backbone.py'), '--freeze'],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and '--freeze needs --compile' in refused.stderr
