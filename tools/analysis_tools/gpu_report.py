"""One command for a GPU: check every fused kernel, time the ops and the backbones.

Sections, each written to ``--out-dir`` as it finishes (report.json and
report.md), so a run stopped early still leaves what it measured:

0. selfcheck: the probes that ``impl='auto'`` runs before it first uses the
   Triton kernels of an op for a dtype (mmsnnmlp.ops.selfcheck), run first
   so that their time is the first use's (Triton compiles included), then
   once more (warm); and what 'auto' picks after them.
1. checks: every Triton kernel against its reference, values and gradients,
   fp32/bf16/fp16 (+ fp64), awkward shapes, tile tails, 1x1 maps; LIF output
   and dx equal PyTorch's path bit for bit, norm_act matches float64
   F.group_norm (+ GELU); on CUDA, repeated backward passes are bitwise
   identical (no atomics); SNN-MLP captured with fullgraph equals eager.
2. ops: LIF and norm_act alone, in GB/s against a device-to-device copy of
   the same bytes.
3. models: SNN-MLP-T/S/B against timm's Swin-T/S at cls (224x224, batch 128
   forward / 64 training), det (2x3x800x1344) and seg (2x3x512x512); forward
   and forward + backward, fp32 and bf16 autocast, eager and (for the T
   models, det shape) compiled, with peak memory.

Compilation uses the 'inductor' backend on CUDA. With ``--quick`` (tiny
shapes, one warm-up-free iteration, SNN-MLP-T and Swin-T; only SNN-MLP-T
compiled, in fp32) the numbers mean nothing: it only exercises the code.

Needs only torch, triton, timm and mmengine (no mmcv, mmdet, mmseg): on a GPU
machine without mmengine, carry its pure-Python wheels (git-ignored .whl/)::

    echo /.whl/ >> .git/info/exclude
    for w in mmengine==0.10.7 addict==2.4.0 termcolor==3.3.0 yapf==0.43.0 \\
             platformdirs==4.14.5; do
      python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \\
          --implementation cp --platform manylinux2014_x86_64 -d .whl "$w"
    done

(about 750 KB) then, there (about 5 minutes on one H100/H200)::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:$PWD python3 tools/analysis_tools/gpu_report.py --out-dir $OUT

``--device cpu --quick`` runs every code path on tiny shapes (the Triton
kernels under TRITON_INTERPRET=1, compile with the 'aot_eager' backend): the
CI test of this tool.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
import traceback
from typing import Dict, List

import torch

from mmsnnmlp.analysis import benchmark as bench
from mmsnnmlp.analysis import tables
from mmsnnmlp.engine.launch import exit_unless_writable
from mmsnnmlp.ops import checks, dispatch, selfcheck

MODELS = ('snnmlp-t', 'snnmlp-s', 'snnmlp-b', 'swin-t', 'swin-s')
COMPILED_MODELS = ('snnmlp-t', 'swin-t')


# --------------------------------------------------------------------------
# 1. Checks (the functions live in mmsnnmlp.ops.checks; tests/ops/test_gpu.py
#    runs the same ones under pytest)
# --------------------------------------------------------------------------


def run_checks(device: torch.device, quick: bool) -> List[Dict]:
    """Every kernel check as report rows. Every constexpr variant is a Triton
    compile (about a second each on a fresh machine), so the LIF checks cover
    each dtype, axis and group kind on four shapes only."""
    from mmsnnmlp.models import SNNMLP
    if quick:
        dtypes, groups = (torch.float32, torch.bfloat16), (4, None)
        lif_shapes, norm_shapes, exact = checks.PROBE_SHAPES[1:], checks.PROBE_SHAPES, False
    else:
        dtypes, groups = checks.DTYPES, checks.GROUPS
        lif_shapes, norm_shapes = checks.LIF_SHAPES, checks.NORM_ACT_SHAPES
        exact = device.type == 'cuda'
    # The interpreter runs a kernel's programs one after another: a second
    # run to compare gradients bit for bit proves nothing there
    repeat = device.type == 'cuda'
    lif_results, norm_results = [], []  # case numbers seed the inputs
    for dtype in dtypes:
        lif_results += checks.check_lif(device, dtype, lif_shapes, groups, exact,
                                        first_seed=len(lif_results), repeat=repeat)
    for dtype in dtypes:
        norm_results += checks.check_norm_act(device, dtype, norm_shapes,
                                              first_seed=len(norm_results), repeat=repeat)
    results = lif_results + norm_results
    # 'aot_eager': the capture and the library ops on this device in seconds;
    # inductor's code generation is timed under models
    torch.manual_seed(0)
    model = SNNMLP('tiny', drop_path_rate=0.0).to(device)
    x = torch.randn((1, 3, 64, 96) if quick else (2, 3, 224, 320), device=device)
    results += checks.check_compile(model, x, 'aot_eager', name='SNNMLP-T compiled')
    return [r._asdict() for r in results]


def run_self_checks(device: torch.device, quick: bool) -> List[Dict]:
    """The self-check's probes for each op and dtype, as report rows."""
    dtypes = (torch.float32,) if quick else (torch.float32, torch.bfloat16, torch.float16)
    rows = []
    for dtype in dtypes:
        for op in selfcheck.OPS:
            first = selfcheck.probe(op, device, dtype)
            again = None if quick else selfcheck.probe(op, device, dtype)
            ok = first.ok and (again is None or again.ok)
            auto = dispatch._auto_choice(torch.empty(0, device=device), op)
            rows.append(dict(
                op=op, dtype=first.dtype, cases=len(first.results),
                max_err=max((r.max_err for r in first.results), default=float('nan')),
                ok=ok, first_ms=round(first.ms, 1),
                again_ms=None if again is None else round(again.ms, 1),
                auto='torch (self-check failed)' if auto == 'triton' and not ok else auto,
                problem=first.describe() or (again.describe() if again else '')))
    return rows


SELFCHECK_COLUMNS = [('op', 'op', ''), ('dtype', 'dtype', ''), ('cases', 'cases', ''),
                     ('max_err', 'max rel. error', '.2e'), ('ok', 'ok', ''),
                     ('first_ms', 'first (ms)', '.1f'), ('again_ms', 'again (ms)', '.1f'),
                     ('auto', "'auto' picks", ''), ('problem', 'problem', '')]


CHECK_COLUMNS = [('kernel', 'kernel', ''), ('shape', 'shape', ''), ('dtype', 'dtype', ''),
                 ('case', 'case', ''), ('max_err', 'max rel. error', '.2e'), ('ok', 'ok', '')]


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


class Report:
    """Collects sections and rewrites report.json / report.md after each."""

    def __init__(self, out_dir: str, env: Dict):
        self.out_dir, self.data, self.md = out_dir, dict(environment=env), []
        os.makedirs(out_dir, exist_ok=True)
        gpu = env.get('gpu') or env['cpu']
        self.md.append(f"# SNN-MLP GPU report\n\n{gpu}, torch {env['torch']}, "
                       f"triton {env['triton']}\n")

    def add(self, key: str, title: str, rows: List[Dict], columns, note: str = '') -> None:
        self.data[key] = rows
        self.md.append(f'## {title}\n\n{note}\n\n{tables.markdown_table(rows, columns)}\n'
                       if note else f'## {title}\n\n{tables.markdown_table(rows, columns)}\n')
        self.write()
        print(f'\n{title}\n{tables.text_table(rows, columns)}', flush=True)

    def write(self) -> None:
        with open(osp.join(self.out_dir, 'report.json'), 'w') as f:
            json.dump(self.data, f, indent=1)
        with open(osp.join(self.out_dir, 'report.md'), 'w') as f:
            f.write('\n'.join(self.md))


def _section(report: Report, name: str, fn) -> None:
    """Run one section; a failure is recorded, and the report goes on."""
    t0 = time.perf_counter()
    try:
        fn()
    except Exception:
        report.data.setdefault('errors', {})[name] = traceback.format_exc()
        report.md.append(f'## {name}: failed\n\n```\n{traceback.format_exc()[-2000:]}\n```\n')
        report.write()
        print(f'{name} failed:\n{traceback.format_exc()}', file=sys.stderr, flush=True)
    report.data.setdefault('seconds', {})[name] = round(time.perf_counter() - t0, 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    p.add_argument('--quick', action='store_true', help='tiny shapes: every code path, fast')
    p.add_argument('--out-dir', default='gpu_report')
    p.add_argument('--sections', nargs='+', default=['selfcheck', 'checks', 'ops', 'models'],
                   choices=['selfcheck', 'checks', 'ops', 'models'])
    p.add_argument('--models', nargs='+', default=None, choices=MODELS,
                   help=f'default: {" ".join(MODELS)} ({" ".join(COMPILED_MODELS)} with --quick)')
    p.add_argument('--iters', type=int, default=None, help='timed iterations per setting')
    p.add_argument('--budget-s', type=float, default=330,
                   help='start no model timing after this many seconds (default: %(default)s)')
    args = p.parse_args(argv)
    exit_unless_writable((args.out_dir, '--out-dir', True))
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device here')
    if device.type == 'cpu':
        os.environ['TRITON_INTERPRET'] = '1'  # the Triton kernels on CPU tensors
    quick = args.quick
    args.models = args.models or list(COMPILED_MODELS if quick else MODELS)
    iters = args.iters or (1 if quick else 10)
    warmup = 0 if quick else 3
    backend = 'aot_eager' if quick or device.type == 'cpu' else 'inductor'
    report = Report(args.out_dir, bench.environment(device))
    t_start = time.perf_counter()

    if 'selfcheck' in args.sections:
        def self_checks():
            rows = run_self_checks(device, quick)
            failed = [r for r in rows if not r['ok']]
            report.add('selfcheck', 'Self-check', rows, SELFCHECK_COLUMNS,
                       "The probes impl='auto' runs before it first uses an op's Triton "
                       'kernels for a dtype: Triton against the PyTorch path, forward and '
                       'backward. first: the first use in this process (Triton compiles '
                       'included); again: warm.')
            report.data['selfcheck_summary'] = dict(probes=len(rows), failed=len(failed))
        _section(report, 'selfcheck', self_checks)

    if 'checks' in args.sections:
        def kernel_checks():
            rows = run_checks(device, quick)
            failed = [r for r in rows if not r['ok']]
            note = (f'{len(rows) - len(failed)} of {len(rows)} cases pass; '
                    'failures first, then a sample of the passes.')
            shown = failed + [r for r in rows if r['ok']][::max(1, len(rows) // 40)]
            report.add('checks', 'Kernel checks', shown, CHECK_COLUMNS, note)
            report.data['checks_summary'] = dict(cases=len(rows), failed=len(failed))
        _section(report, 'checks', kernel_checks)

    if 'ops' in args.sections:
        def ops():
            shape = (1, 8, 6, 10) if quick else (2, 96, 200, 336)  # det stage 1
            rows = []
            for dtype in ('fp32',) if quick else ('fp32', 'bf16'):
                rows += bench.time_ops(device, shape, dtype, warmup=warmup, iters=iters)
            report.add('ops', 'LIF and norm_act alone', rows, tables.OP_COLUMNS,
                       'GB/s of the minimum traffic (forward: read x, write out; backward '
                       'adds read x, read dout, write dx), against a device copy.')
        _section(report, 'ops', ops)

    if 'models' in args.sections:
        def models():
            # quick: cls (its own shapes and outputs) and det (compiled too)
            # cover every path; seg runs as det does
            shapes = {'cls': ((2, 3, 32, 32), (1, 3, 32, 32)), 'det': ((1, 3, 64, 96),) * 2
                      } if quick else {
                'cls': ((128, 3, 224, 224), (64, 3, 224, 224)),
                'det': ((2, 3, 800, 1344),) * 2, 'seg': ((2, 3, 512, 512),) * 2}
            jobs = []  # eager runs first, compiled ones (slow to build) last
            for compiled in (False, True):
                for task, (fwd_shape, train_shape) in shapes.items():
                    if compiled and task != 'det':
                        continue
                    runs = ([(('fwd', 'train'), fwd_shape)] if fwd_shape == train_shape else
                            [(('fwd',), fwd_shape), (('train',), train_shape)])
                    compiled_models = COMPILED_MODELS[:1] if quick else COMPILED_MODELS
                    for modes, shape in runs:
                        if compiled and quick:  # the checks compile forward+backward already
                            modes = ('fwd',)
                        for name in args.models:
                            if not compiled or name in compiled_models:
                                jobs.append((task, shape, modes, compiled, name))
            rows, skipped = [], []
            for task, shape, modes, compiled, name in jobs:
                if time.perf_counter() - t_start > args.budget_s:
                    skipped.append(f'{name} {task} {"/".join(modes)}'
                                   f'{" compiled" if compiled else ""}')
                    continue
                print(f'{task} {bench.shape_text(shape)}{" compiled" if compiled else ""}',
                      flush=True)
                # compiled: AMP only (each dtype compiles anew); quick: fp32
                dtypes = (('fp32',) if quick else ('bf16',)) if compiled else ('fp32', 'bf16')
                new = bench.time_models(
                    [name], shape, device, modes=modes, dtypes=dtypes,
                    compile_modes=(compiled,), compile_backend=backend, warmup=warmup,
                    iters=iters, baselines='timm',
                    out_indices=(3,) if task == 'cls' else (0, 1, 2, 3))
                rows += [dict(r, task=task) for r in new]
                report.data['models'] = rows
                report.write()
            order = {t: i for i, t in enumerate(shapes)}
            rows.sort(key=lambda r: (order[r['task']], r['mode'], r['compiled'], r['dtype']))
            report.data['models_skipped'] = skipped
            report.add('models', 'Backbones', rows, [('task', 'task', '')] + tables.MODEL_COLUMNS,
                       'cls: last stage only (224x224, batch 128 forward, 64 training); det and '
                       'seg: all four stages. bf16 = autocast. Swin from timm. Compiled: '
                       'inductor, bf16 only. Skipped for the time budget: '
                       f'{", ".join(skipped) or "none"}.')
        _section(report, 'models', models)

    report.data['seconds']['total'] = round(time.perf_counter() - t_start, 1)
    report.write()
    failed = (report.data.get('checks_summary', {}).get('failed')
              or report.data.get('selfcheck_summary', {}).get('failed'))
    print(f"\nwrote {osp.join(args.out_dir, 'report.md')} and report.json in "
          f"{report.data['seconds']['total']:.0f} s")
    return 1 if report.data.get('errors') or failed else 0


if __name__ == '__main__':
    sys.exit(main())
