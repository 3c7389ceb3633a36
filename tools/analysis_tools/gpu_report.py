"""One command for a GPU: check every fused kernel, time the ops and the backbones.

Sections, each written to ``--out-dir`` as it finishes (report.json and
report.md), so a run stopped early still leaves what it measured:

1. checks: every Triton kernel against its reference, values and gradients,
   fp32/bf16/fp16 (+ fp64), awkward shapes, tile tails, 1x1 maps; LIF output
   and dx equal PyTorch's path bit for bit, norm_act matches float64
   F.group_norm (+ GELU); repeated backward passes are bitwise identical
   (no atomics); SNN-MLP captured with fullgraph equals eager.
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
import torch.nn.functional as F

from mmsnnmlp.utils import benchmark as bench

MODELS = ('snnmlp-t', 'snnmlp-s', 'snnmlp-b', 'swin-t', 'swin-s')
COMPILED_MODELS = ('snnmlp-t', 'swin-t')
CHECK_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
# every constexpr variant is a Triton compile (about a second each on a fresh
# machine): the LIF checks cover each dtype, axis and group kind on 4 shapes
# 1x1 maps, odd sizes, a one-sample batch, the norm tiles' tails (HW 1025 =
# 1024 + 1, C 5 = 4 + 1), a stage-4 map, and the largest map the issue names
CHECK_SHAPES = [(1, 3, 1, 1), (2, 5, 7, 9), (1, 5, 1025, 1), (3, 7, 33, 65), (2, 768, 25, 42),
                (2, 96, 300, 500)]
QUICK_SHAPES = [(1, 3, 1, 1), (2, 5, 7, 9)]
GROUPS = (1, 4, None)


# --------------------------------------------------------------------------
# 1. Checks
# --------------------------------------------------------------------------


def _lif_case(shape, dtype, group, dim, device, seed):
    from mmsnnmlp.ops import lif
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen) * 0.6).to(device, dtype)
    g = torch.randn(shape, generator=gen).to(device, dtype)
    pdtype = torch.float64 if dtype == torch.float64 else torch.float32
    params = (torch.tensor([0.3], dtype=pdtype), torch.tensor([0.1], dtype=pdtype))

    def run(impl, on=device):
        xi = x.to(on).requires_grad_(True)
        tau, vth = (p.to(on).requires_grad_(True) for p in params)
        out = lif(xi, tau, vth, group, dim, impl)
        out.backward(g.to(on))
        return [out.detach().cpu(), xi.grad.cpu(), tau.grad.cpu(), vth.grad.cpu()]
    return run


def check_lif(device, shapes, dtypes, groups, exact) -> List[Dict]:
    """Triton against PyTorch's path on the same device (same float32 ops,
    no FMA: bitwise equal where ``exact``), float64 against the CPU reference,
    and bitwise repeatable gradients."""
    rows = []
    for dtype in dtypes:
        for shape in shapes:
            for group in groups:
                for dim in (2, 3):
                    run = _lif_case(shape, dtype, group, dim, device, seed=len(rows))
                    tri, ref = run('triton'), run('torch')
                    if dtype == torch.float64:
                        ref = run('reference', 'cpu')
                    again = run('triton')
                    errs = [(a.double() - b.double()).abs().max().item() for a, b in zip(tri, ref)]
                    scale = max(1.0, ref[2].abs().item(), ref[3].abs().item())
                    if dtype == torch.float64:
                        ok = max(errs) <= 1e-9 * scale
                    elif exact or dtype != torch.bfloat16:
                        ok = errs[0] == errs[1] == 0 and max(errs[2:]) <= 1e-4 * scale
                    else:  # the interpreter rounds to bfloat16 toward zero
                        ok = max(errs[:2]) <= 2e-2 and max(errs[2:]) <= 1e-2 * scale
                    repeatable = all(torch.equal(a, b) for a, b in zip(tri[1:], again[1:]))
                    rows.append(dict(kernel='lif', shape=bench.shape_text(shape),
                                     dtype=str(dtype)[6:], case=f'group={group} dim={dim}',
                                     max_err=max(errs), ok=bool(ok and repeatable)))
    return rows


def check_norm_act(device, shapes, dtypes) -> List[Dict]:
    """Triton against float64 F.group_norm (+ GELU) on the same inputs, values
    and the three gradients, and bitwise repeatable gradients."""
    from mmsnnmlp.ops import norm_act
    tol = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 5e-2}
    rows = []
    for dtype in dtypes:
        for shape in shapes:
            for act in (None, 'gelu'):
                gen = torch.Generator().manual_seed(len(rows))
                x = (torch.randn(shape, generator=gen) * 1.5 + 0.3).to(device, dtype)
                g = torch.randn(shape, generator=gen).to(device, dtype)
                pdtype = torch.float64 if dtype == torch.float64 else torch.float32
                w = (1 + 0.5 * torch.randn(shape[1], generator=gen)).to(device, pdtype)
                b = (0.3 * torch.randn(shape[1], generator=gen)).to(device, pdtype)

                def run(fn, xi, wi, bi):
                    xi, wi, bi = (t.detach().requires_grad_(True) for t in (xi, wi, bi))
                    out = fn(xi, wi, bi)
                    out.backward(g.to(out.dtype))
                    return [out.detach(), xi.grad, wi.grad, bi.grad]

                def fused(xi, wi, bi):
                    return norm_act(xi, wi, bi, 1e-5, act, 'triton')

                def reference(xi, wi, bi):
                    y = F.group_norm(xi, 1, wi, bi, 1e-5)
                    return F.gelu(y) if act else y
                tri = run(fused, x, w, b)
                ref = run(reference, x.double(), w.double(), b.double())
                again = run(fused, x, w, b)
                errs = []
                for a, r in zip(tri, ref):
                    errs.append(((a.double() - r).abs().max() / max(1.0, r.abs().max())).item())
                ok = max(errs) <= tol[dtype] and all(
                    torch.equal(a, b) for a, b in zip(tri[1:], again[1:]))
                rows.append(dict(kernel='norm_act', shape=bench.shape_text(shape),
                                 dtype=str(dtype)[6:], case=f'act={act}', max_err=max(errs),
                                 ok=bool(ok)))
    return rows


def check_compile(device, backend, shape) -> List[Dict]:
    """SNN-MLP-T under torch.compile(fullgraph=True) against eager, outputs
    and gradients."""
    from mmsnnmlp.models import SNNMLP
    torch.manual_seed(0)
    model = SNNMLP('tiny', drop_path_rate=0.0).to(device)
    x = torch.randn(shape, device=device)
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    results = []
    for run in (model, compiled):
        model.zero_grad(set_to_none=True)
        outs = run(x)
        gen = torch.Generator().manual_seed(1)
        sum((o * torch.randn(o.shape, generator=gen).to(device)).sum() for o in outs).backward()
        tensors = {f'out{i}': o.detach() for i, o in enumerate(outs)}
        tensors.update((n, p.grad.clone()) for n, p in model.named_parameters()
                       if p.grad is not None)
        results.append(tensors)
    eager, comp = results
    # A parameter with a gradient on one side only is a failure, not a skip.
    same_keys = eager.keys() == comp.keys()
    err = max(((comp[k] - eager[k]).abs().max() / max(1.0, eager[k].abs().max())).item()
              for k in eager.keys() & comp.keys())
    return [dict(kernel='SNNMLP-T compiled', shape=bench.shape_text(shape), dtype='float32',
                 case=f'fullgraph, {backend}', max_err=err,
                 ok=same_keys and err <= 1e-3)]


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
        self.md.append(f'## {title}\n\n{note}\n\n{bench.markdown_table(rows, columns)}\n'
                       if note else f'## {title}\n\n{bench.markdown_table(rows, columns)}\n')
        self.write()
        print(f'\n{title}\n{bench.text_table(rows, columns)}', flush=True)

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
    p.add_argument('--sections', nargs='+', default=['checks', 'ops', 'models'],
                   choices=['checks', 'ops', 'models'])
    p.add_argument('--models', nargs='+', default=None, choices=MODELS,
                   help=f'default: {" ".join(MODELS)} ({" ".join(COMPILED_MODELS)} with --quick)')
    p.add_argument('--iters', type=int, default=None, help='timed iterations per setting')
    p.add_argument('--budget-s', type=float, default=330,
                   help='start no model timing after this many seconds (default: %(default)s)')
    args = p.parse_args(argv)
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

    if 'checks' in args.sections:
        def checks():
            if quick:
                dtypes, groups = (torch.float32, torch.bfloat16), (4, None)
                rows = check_lif(device, QUICK_SHAPES[1:], dtypes, groups, exact=False)
                rows += check_norm_act(device, QUICK_SHAPES, dtypes)
            else:  # LIF has no tiles to cover: the smaller shapes do
                rows = check_lif(device, CHECK_SHAPES[:4], CHECK_DTYPES, GROUPS,
                                 exact=device.type == 'cuda')
                rows += check_norm_act(device, CHECK_SHAPES, CHECK_DTYPES)
            # 'aot_eager': the capture and the library ops on this device in
            # seconds; inductor's code generation is timed under models
            rows += check_compile(device, 'aot_eager',
                                  (1, 3, 64, 96) if quick else (2, 3, 224, 320))
            failed = [r for r in rows if not r['ok']]
            note = (f'{len(rows) - len(failed)} of {len(rows)} cases pass; '
                    'failures first, then a sample of the passes.')
            shown = failed + [r for r in rows if r['ok']][::max(1, len(rows) // 40)]
            report.add('checks', 'Kernel checks', shown, CHECK_COLUMNS, note)
            report.data['checks_summary'] = dict(cases=len(rows), failed=len(failed))
        _section(report, 'checks', checks)

    if 'ops' in args.sections:
        def ops():
            shape = (1, 8, 6, 10) if quick else (2, 96, 200, 336)  # det stage 1
            rows = []
            for dtype in ('fp32',) if quick else ('fp32', 'bf16'):
                rows += bench.time_ops(device, shape, dtype, warmup=warmup, iters=iters)
            report.add('ops', 'LIF and norm_act alone', rows, bench.OP_COLUMNS,
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
            report.add('models', 'Backbones', rows, [('task', 'task', '')] + bench.MODEL_COLUMNS,
                       'cls: last stage only (224x224, batch 128 forward, 64 training); det and '
                       'seg: all four stages. bf16 = autocast. Swin from timm. Compiled: '
                       'inductor, bf16 only. Skipped for the time budget: '
                       f'{", ".join(skipped) or "none"}.')
        _section(report, 'models', models)

    report.data['seconds']['total'] = round(time.perf_counter() - t_start, 1)
    report.write()
    summary = report.data.get('checks_summary', {})
    print(f"\nwrote {osp.join(args.out_dir, 'report.md')} and report.json in "
          f"{report.data['seconds']['total']:.0f} s")
    return 1 if report.data.get('errors') or summary.get('failed') else 0


if __name__ == '__main__':
    sys.exit(main())
