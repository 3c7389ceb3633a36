"""The benchmark tool runs end to end on CPU (tiny shapes, every code path)."""
import json
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool(name, *args, env=None):
    cmd = [sys.executable, osp.join(ROOT, 'tools/analysis_tools', name)] + [str(a) for a in args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert out.returncode == 0, f'{cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}'
    return out.stdout


def test_benchmark_times_the_timm_classifiers(tmp_path):
    """ImageNet img/s of the timm models, as get_throughput.sh measures it
    (tiny input here: only the code path is checked)."""
    out = tmp_path / 'bench.json'
    _tool('benchmark_backbone.py', '--device', 'cpu', '--shape', '2x3x64x64', '--models',
          'snnmlp_tiny', '--warmup', '0', '--iters', '1', '--json', out)
    (row,) = json.load(open(out))['models']
    assert row['model'] == 'snnmlp_tiny' and row['impl'] == 'timm classifier'
    assert row['params_m'] == 28.34 and row['img_per_s'] > 0
