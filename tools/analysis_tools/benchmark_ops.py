"""Time the fused ops alone: LIF (along H and W) and norm_act (+ GELU).

Forward and forward + backward for each implementation ('triton', 'torch',
'reference'), in GB/s of the minimum traffic against a device-to-device
copy of the same tensor (:func:`mmsnnmlp.analysis.benchmark.time_ops`).

Example (stage 1 of SNN-MLP-T at the detection shape)::

    python tools/analysis_tools/benchmark_ops.py --shape 2x96x200x336 --dtype bf16
    # on CPU, in the layout the backbone's ops see there
    python tools/analysis_tools/benchmark_ops.py --device cpu --shape 1x96x200x336 --channels-last
"""
import argparse
import json

import torch

from mmsnnmlp.analysis import benchmark as bench
from mmsnnmlp.analysis import tables
from mmsnnmlp.engine.launch import exit_unless_writable


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                   choices=['cpu', 'cuda'])
    p.add_argument('--shape', default='2x96x200x336', help='NxCxHxW')
    p.add_argument('--dtype', default='fp32', choices=list(bench.DTYPES))
    p.add_argument('--impls', nargs='+', default=None, choices=['triton', 'torch', 'reference'],
                   help="default: all three on CUDA, 'torch' and 'reference' on CPU")
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    p.add_argument('--channels-last', action='store_true',
                   help='tensors in channels_last memory (what the backbone runs on CPU)')
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--iters', type=int, default=20)
    p.add_argument('--json', metavar='OUT', help='also write the rows to this JSON file')
    args = p.parse_args(argv)
    exit_unless_writable((args.json, '--json'))
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    impls = args.impls or (['triton', 'torch', 'reference'] if device.type == 'cuda'
                           else ['torch', 'reference'])
    rows = bench.time_ops(device, bench.parse_shape(args.shape), args.dtype, impls,
                          args.warmup, args.iters, channels_last=args.channels_last)
    columns = tables.OP_COLUMNS + [('layout', 'layout', '')]
    if device.type == 'cpu':  # process CPU time: other processes' load inflates it less
        columns += [('cpu_ms', 'cpu-time ms', '.3f'),
                    ('x_ref_cpu', 'x reference (cpu time)', '.2f')]
    print(tables.text_table(rows, columns))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(environment=bench.environment(device), ops=rows), f, indent=1)
    return rows


if __name__ == '__main__':
    main()
