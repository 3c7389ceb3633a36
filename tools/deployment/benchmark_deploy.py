"""Time backbones on CPU in PyTorch eager, ONNX Runtime and OpenVINO, side by side.

Each backbone is exported once (TorchScript exporter, fixed input shape,
opset 17) and the same .onnx file runs in both runtimes. All models and
runtimes are loaded first; then, one runtime after the other (PyTorch eager,
ONNX Runtime, OpenVINO), each repeat runs every model once, so that load
from other processes on a shared machine falls on the models alike and
their ratios stay comparable (a runtime is not timed right after another
one's run, which would leave it a cold cache). Prints the CPU model, ATen's
ISA, the load average before and after, and the median of ``--repeats``
runs per cell (wall time; also the process CPU time, which that load
inflates less). ``--gemm-floor`` adds each model's dense GEMMs timed alone
(:func:`mmsnnmlp.analysis.benchmark.gemm_floors`): no runtime runs the model
faster unless its GEMMs beat torch's. Models: those of
``benchmark_backbone.py`` (e.g. ``snnmlp-t-nchw``, eager without the
channels_last inside); the last one is the reference of the ratio column.

Usage:
    python tools/deployment/benchmark_deploy.py [--models snnmlp-t swin-t]
        [--shape 1x3x800x1344] [--repeats 5] [--warmup 2] [--threads N] [--markdown]
        [--gemm-floor]
"""
import argparse
import os
import statistics
import tempfile
import time

import torch

from mmsnnmlp.analysis.baselines import build_backbone
from mmsnnmlp.analysis.benchmark import environment, gemm_floors, parse_shape
from mmsnnmlp.analysis.tables import markdown_table, text_table
from mmsnnmlp.deployment import export_onnx
from mmsnnmlp.deployment.runtime import Runner, available_backends


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=['snnmlp-t', 'swin-t'])
    parser.add_argument('--shape', default='1x3x800x1344', help='NxCxHxW, or det/seg/cls')
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per cell')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None,
                        help='threads of every runtime (default: torch.get_num_threads())')
    parser.add_argument('--work-dir', default=None, help='keep the .onnx files here')
    parser.add_argument('--markdown', action='store_true')
    parser.add_argument('--gemm-floor', action='store_true',
                        help="also time each model's dense GEMMs alone (1x1 convs and Linear "
                             'layers as torch.mm): a floor under its time in any runtime')
    return parser.parse_args()


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def main():
    args = parse_args()
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    shape = parse_shape(args.shape)
    x = torch.randn(shape)
    backends = [b for b, ok in available_backends().items() if ok]
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='benchmark_deploy_')
    load_before = os.getloadavg()[0]
    rows, cells = [], []  # cells: (row, key, callable)
    for name in args.models:
        model, note = build_backbone(name, shape)
        model.eval()
        row = dict(model=name, impl=note)
        path = os.path.join(work_dir, f'{name}.onnx')
        row['export_s'] = export_onnx(model, x, path, dynamic_axes={})['seconds']
        cells.append((row, 'torch', lambda model=model: model(x)))
        for backend in backends:
            runner = Runner(path, backend, threads=threads)
            cells.append((row, backend, lambda runner=runner: runner(x)))
        rows.append(row)
    times = {id(fn): ([], []) for _, _, fn in cells}
    with torch.no_grad():
        for key in ['torch'] + backends:  # one runtime at a time, its models interleaved
            block = [fn for _, k, fn in cells if k == key]
            for _ in range(args.warmup):
                for fn in block:
                    fn()
            for _ in range(args.repeats):
                for fn in block:
                    wall, cpu = _timed(fn)
                    times[id(fn)][0].append(wall)
                    times[id(fn)][1].append(cpu)
    for row, key, fn in cells:
        row[f'{key}_ms'] = statistics.median(times[id(fn)][0])
        row[f'{key}_cpu_ms'] = statistics.median(times[id(fn)][1])
    if args.gemm_floor:
        floors = gemm_floors(args.models, shape, torch.device('cpu'))
        for row in rows:
            row['gemm_ms'] = floors[row['model']]['ms']
    for row in rows:
        for backend in backends:
            row[f'{backend}_speedup'] = row['torch_ms'] / row[f'{backend}_ms']
        print(f"{row['model']}: " + ', '.join(f'{k}={v:.1f}' for k, v in row.items()
                                               if isinstance(v, float)), flush=True)
    env = environment(torch.device('cpu'))
    print(f"CPU: {env['cpu']} ({env['cpus']} logical CPUs, {threads} threads), ATen ISA: "
          f"{env['cpu_capability']}, flags: {env['cpu_flags']}, "
          f"load avg (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    versions = {'torch': torch.__version__}
    for module in ('onnxruntime', 'openvino'):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            pass
    print('versions: ' + ', '.join(f'{k} {v}' for k, v in versions.items()))
    print(f'input {"x".join(map(str, shape))}, median of {args.repeats} runs per cell, the '
          f'models interleaved, after {args.warmup} warm-up runs (ms: wall time; cpu: process '
          'CPU time)')
    columns = [('model', 'model', 's'), ('impl', 'PyTorch model', 's'),
               ('torch_ms', 'PyTorch eager ms', '.1f')]
    for backend in backends:
        columns += [(f'{backend}_ms', f'{backend} ms', '.1f'),
                    (f'{backend}_speedup', f'{backend} vs eager', '.2f')]
    if len(rows) > 1 and 'onnxruntime' in backends:
        last = rows[-1]
        for row in rows:
            row['ort_vs_last'] = row['onnxruntime_ms'] / last['onnxruntime_ms']
            row['ort_cpu_vs_last'] = row['onnxruntime_cpu_ms'] / last['onnxruntime_cpu_ms']
        columns += [('ort_vs_last', f'ORT time / {last["model"]} ORT time', '.2f'),
                    ('ort_cpu_vs_last', 'same, CPU time', '.2f')]
    if args.gemm_floor:
        columns.append(('gemm_ms', 'dense GEMMs alone ms', '.1f'))
    print((markdown_table if args.markdown else text_table)(rows, columns))


if __name__ == '__main__':
    main()
