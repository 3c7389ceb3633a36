"""The benchmark tool runs end to end on CPU (tiny shapes, every code path)."""
import json
import os.path as osp

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
