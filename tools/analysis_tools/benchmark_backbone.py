"""Time backbones side by side: SNN-MLP T/S/B against Swin-T/S and ResNet-50.

Every model is built, warmed up and timed in this one process on the same
input, so the numbers compare (timing, memory and tables:
:mod:`mmsnnmlp.analysis.benchmark`). ``--rounds`` times the models round-robin,
for machines shared with other work; CPU rows also give the process CPU time.

Models: snnmlp-t/s/b (mmsnnmlp, ``impl='auto'``), snnmlp-t-ref (SNN-MLP-T on
the unfused reference ops: the official model's computation), snnmlp-t-nchw
(SNN-MLP-T without its channels_last inside, ``channels_last=False``), swin-t/s and
resnet50 (mmdet's where it imports, else timm's / torchvision's) as backbones;
and timm's ImageNet classifiers snnmlp_tiny/small/base and
swin_tiny/small_patch4_window7_224 (with head), for img/s at 224x224.

Examples::

    # the CPU comparison of the README (2 threads, detection input)
    python tools/analysis_tools/benchmark_backbone.py --device cpu --threads 2 \\
        --shape 1x3x800x1344 --models snnmlp-t swin-t --rounds 3 --iters 3
    # compiled inference with inductor's freezing (oneDNN weight prepacking)
    python tools/analysis_tools/benchmark_backbone.py --device cpu --threads 2 \\
        --shape 1x3x800x1344 --models snnmlp-t swin-t --rounds 2 --iters 3 --compile --freeze
    # detection shape, training step, bf16 autocast, compiled too, to JSON
    python tools/analysis_tools/benchmark_backbone.py --shape det --mode train \\
        --dtype bf16 --compile --json bench.json
    # how close to its dense-GEMM floor each model runs, compiled
    python tools/analysis_tools/benchmark_backbone.py --device cpu --threads 2 \\
        --shape 1x3x800x1344 --models snnmlp-t swin-t --compile --freeze --gemm-floor
    # ImageNet throughput as the authors' get_throughput.sh (batch 64, 224x224)
    python tools/analysis_tools/benchmark_backbone.py --shape cls --batch 64 \\
        --models snnmlp_tiny snnmlp_small snnmlp_base swin_tiny_patch4_window7_224

The fused ops alone: benchmark_ops.py; where a forward spends its time:
profile_backbone.py; the full GPU report: gpu_report.py.

``--gemm-floor`` adds, per model, the time of its dense GEMMs alone (every 1x1
convolution and Linear layer of one forward, as ``torch.mm`` of the same
sizes into preallocated outputs): no runtime on this machine runs the model
faster than that unless its GEMMs beat this library's. (Swin's attention
products are not counted: its floor is lower than its true one.)
"""
import argparse
import json
import sys

import torch

from mmsnnmlp.analysis import benchmark as bench
from mmsnnmlp.analysis.baselines import MODELS
from mmsnnmlp.analysis.tables import MODEL_COLUMNS, text_table
from mmsnnmlp.engine.launch import exit_unless_writable

DEFAULT_MODELS = ('snnmlp-t', 'snnmlp-t-ref', 'swin-t', 'resnet50')
GEMM_FLOOR_BASELINE = 'swin-t'  # --gemm-floor: the others' floors against its time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', nargs='+', default=list(DEFAULT_MODELS), choices=MODELS,
                   metavar='MODEL', help=f'from {", ".join(MODELS)} (default: %(default)s)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                   choices=['cpu', 'cuda'])
    p.add_argument('--dtype', default='fp32', choices=list(bench.DTYPES),
                   help='fp32, or bf16/fp16 autocast')
    p.add_argument('--shape', default='det',
                   help='cls (Bx3x224x224), det (2x3x800x1344), seg (2x3x512x512) or NxCxHxW')
    p.add_argument('--batch', type=int, default=1, help='B of --shape cls (default: 1)')
    p.add_argument('--mode', default='fwd', choices=['fwd', 'train'],
                   help='forward without grad, or forward + backward')
    p.add_argument('--compile', action='store_true', help='torch.compile the models')
    p.add_argument('--compile-backend', default='inductor')
    p.add_argument('--freeze', action='store_true',
                   help="with --compile (inductor, --mode fwd): inductor's freezing, weights as "
                        'constants (oneDNN prepacking, conv + pointwise fusion on CPU)')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--iters', type=int, default=10, help='timed iterations per round')
    p.add_argument('--rounds', type=int, default=1,
                   help='time the models round-robin this many times (shared machines)')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    p.add_argument('--channels-last', action='store_true',
                   help='models and input in channels_last memory format')
    p.add_argument('--baselines', default='auto', choices=['auto', 'mmdet', 'timm'],
                   help='Swin/ResNet from mmdet, or timm/torchvision (auto: mmdet if it imports)')
    p.add_argument('--gemm-floor', action='store_true',
                   help='also time each model\'s dense GEMMs alone (1x1 convs and Linear layers '
                        'as torch.mm into preallocated outputs, fp32): a floor under its time')
    p.add_argument('--json', metavar='OUT', help='also write the results to this JSON file')
    args = p.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.rounds < 1:
        p.error('--iters and --rounds must be >= 1, --warmup >= 0')
    if args.freeze and not (args.compile and args.mode == 'fwd'
                            and args.compile_backend == 'inductor'):
        p.error('--freeze needs --compile with the inductor backend and --mode fwd')
    try:
        args.shape = bench.parse_shape(args.shape, args.batch)
    except ValueError as err:
        p.error(str(err))
    return args


def _print_floors_against_baseline(rows) -> None:
    """Each model's GEMM floor and time as fractions of the baseline's time in the same setting."""
    for row in rows:
        base = next((r for r in rows if r['model'] == GEMM_FLOOR_BASELINE and all(
            r[k] == row[k] for k in ('mode', 'dtype', 'compiled'))), None)
        if base is not None and row is not base:
            print(f"{row['model']}{' compiled' if row['compiled'] else ''}: its dense GEMMs alone "
                  f"take {row['gemm_ms'] / base['median_ms']:.2f}x the time of {base['model']}, "
                  f"the whole model {row['median_ms'] / base['median_ms']:.2f}x")


def main(argv=None) -> dict:
    args = parse_args(argv)
    exit_unless_writable((args.json, '--json'))
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: CUDA is not available')
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = bench.time_models(
        args.models, args.shape, device, modes=(args.mode,), dtypes=(args.dtype,),
        compile_modes=(args.compile,), compile_backend=args.compile_backend,
        warmup=args.warmup, iters=args.iters, rounds=args.rounds, baselines=args.baselines,
        channels_last=args.channels_last, freeze=args.freeze,
        log=lambda line: print(line, file=sys.stderr, flush=True))
    columns = MODEL_COLUMNS + [('min_ms', 'min ms', '.1f')]
    if device.type == 'cpu':  # grows less than wall time under other processes' load
        columns.append(('cpu_ms', 'cpu-time ms', '.1f'))
    if args.gemm_floor:
        floors = bench.gemm_floors(args.models, args.shape, device, args.baselines)
        for row in rows:
            floor = floors[row['model']]
            row.update(gemm_ms=floor['ms'], gemm_gflop=floor['gflop'],
                       gemm_share=floor['ms'] / row['median_ms'])
        columns += [('gemm_gflop', 'GEMM GFLOP', '.1f'), ('gemm_ms', 'GEMMs alone ms', '.1f'),
                    ('gemm_share', 'of median', '.0%')]
    print(text_table(rows, columns))
    if args.gemm_floor:
        _print_floors_against_baseline(rows)
    env = bench.environment(device)
    print(f"\n{env.get('gpu', env['cpu'])} ({env['cpu_capability']}), {env['threads']} threads, "
          f"torch {env['torch']}; median of {args.iters * args.rounds} iterations after "
          f"{args.warmup} warm-up; load average {env['loadavg_1min']}"
          + ('; compiled with inductor freezing' if args.freeze else ''))
    result = dict(args={k: v for k, v in vars(args).items()}, environment=env, models=rows)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
