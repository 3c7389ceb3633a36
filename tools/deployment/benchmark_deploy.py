"""Time backbones on CPU in PyTorch eager, ONNX Runtime and OpenVINO, side by side.

Each backbone is exported once (TorchScript exporter, fixed input shape,
opset 17) and the same .onnx file runs in both runtimes. Prints the CPU
model, ATen's ISA and the median of ``--repeats`` runs per cell.

Usage:
    python tools/deployment/benchmark_deploy.py [--models snnmlp-t swin-t]
        [--shape 1x3x800x1344] [--repeats 5] [--warmup 2] [--threads N] [--markdown]
"""
import argparse
import os
import tempfile

import torch

from mmsnnmlp.analysis.baselines import build_backbone
from mmsnnmlp.analysis.benchmark import environment, parse_shape, time_fn
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
    return parser.parse_args()


def main():
    args = parse_args()
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    shape = parse_shape(args.shape)
    device = torch.device('cpu')
    x = torch.randn(shape)
    backends = [b for b, ok in available_backends().items() if ok]
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='benchmark_deploy_')
    rows = []
    for name in args.models:
        model, note = build_backbone(name, shape)
        model.eval()
        row = dict(model=name, impl=note)
        with torch.no_grad():
            row['torch_ms'] = time_fn(lambda: model(x), device, args.warmup,
                                      args.repeats)['median_ms']
        path = os.path.join(work_dir, f'{name}.onnx')
        info = export_onnx(model, x, path, dynamic_axes={})
        row['export_s'] = info['seconds']
        for backend in backends:
            runner = Runner(path, backend, threads=threads)
            row[f'{backend}_ms'] = time_fn(lambda: runner(x), device, args.warmup,
                                           args.repeats)['median_ms']
            row[f'{backend}_speedup'] = row['torch_ms'] / row[f'{backend}_ms']
        rows.append(row)
        print(f'{name}: ' + ', '.join(f'{k}={v:.1f}' for k, v in row.items()
                                      if isinstance(v, float)), flush=True)
    env = environment(device)
    print(f"CPU: {env['cpu']} ({env['cpus']} logical CPUs, {threads} threads), ATen ISA: "
          f"{env['cpu_capability']}, flags: {env['cpu_flags']}, load avg {env['loadavg_1min']}")
    versions = {'torch': torch.__version__}
    for module in ('onnxruntime', 'openvino'):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            pass
    print('versions: ' + ', '.join(f'{k} {v}' for k, v in versions.items()))
    print(f'input {"x".join(map(str, shape))}, median of {args.repeats} runs after '
          f'{args.warmup} warm-up runs')
    columns = [('model', 'model', 's'), ('impl', 'PyTorch model', 's'),
               ('torch_ms', 'PyTorch eager ms', '.1f')]
    for backend in backends:
        columns += [(f'{backend}_ms', f'{backend} ms', '.1f'),
                    (f'{backend}_speedup', f'{backend} vs eager', '.2f')]
    if len(rows) > 1 and 'onnxruntime' in backends:
        base = rows[-1]['onnxruntime_ms']
        for row in rows:
            row['ort_vs_last'] = row['onnxruntime_ms'] / base
        columns.append(('ort_vs_last', f'ORT time / {rows[-1]["model"]} ORT time', '.2f'))
    print((markdown_table if args.markdown else text_table)(rows, columns))


if __name__ == '__main__':
    main()
