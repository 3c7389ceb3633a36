"""Where an SNN-MLP forward spends its time: torch.profiler, by op and by
kind of module (LIF, norms, 1x1 and depthwise convolutions, GELU, residual
adds), with the number of ATen ops each kind dispatches.

The op count matters on CPU with several threads: every ATen op on a large
tensor is one OpenMP parallel region, and on a machine whose cores are busy
with other work each region waits until all its threads have run (a
scheduler time slice per region at worst), whatever the op's size.

Example (the CPU detection case of the README; compare --threads 1 and 2)::

    python tools/analysis_tools/profile_backbone.py --device cpu --threads 2 \\
        --shape 1x3x800x1344
"""
import argparse
import json
from typing import Optional

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from mmsnnmlp.analysis import benchmark as bench
from mmsnnmlp.analysis.tables import text_table
from mmsnnmlp.engine.launch import exit_unless_writable
from mmsnnmlp.models import SNNMLP, layers
from mmsnnmlp.ops import LIF, NormAct

KIND_COLUMNS = [('kind', 'module kind', ''), ('ms', 'ms', '.2f'), ('calls', 'calls', 'd'),
                ('aten_ops', 'ATen passes', 'd'), ('share', '% of forward', '.1f')]
# the inference shortcuts of mmsnnmlp.models.layers, which replace module calls
SHORTCUTS = {'gelu_sum': 'GELU x2 + sum', 'gelu_fresh': 'GELU', 'residual_add': 'residual add',
             'mlp_tiled': 'MLP, tiled (1x1 convs + GELU)',
             'branches_tiled': 'conv2_1/conv2_2 + GELUs + sum, tiled'}
# 1x1 convs that the tiled shortcuts compute (wrapping them would turn those off)
TILED_CONVS = ('.fc1', '.fc2', '.conv2_1', '.conv2_2')


def module_kind(m: nn.Module) -> Optional[str]:
    """A label for the leaf modules whose time is attributed."""
    if isinstance(m, LIF):
        return 'LIF'
    if isinstance(m, NormAct):
        return 'norm + GELU' if m.act else 'norm'
    if isinstance(m, nn.Conv2d):
        if m.groups > 1 and m.groups == m.in_channels:
            return 'conv depthwise'
        return 'conv 1x1' if m.kernel_size == (1, 1) else 'conv kxk'
    if isinstance(m, nn.GELU):
        return 'GELU'
    return None


def _labelled(fn, kind: str):
    """``fn`` timed as one profiler event ``module::kind``."""
    def labelled(*a, **kw):
        with record_function(f'module::{kind}'):
            return fn(*a, **kw)
    return labelled


# ATen ops that only make views or allocate: no pass over the data
METADATA_OPS = frozenset(f'aten::{name}' for name in (
    'view', 'select', 'slice', 'narrow', 'as_strided', 'unflatten', 'reshape', 'permute',
    'expand', 'squeeze', 'unsqueeze', 't', 'transpose', 'alias', 'detach', 'lift_fresh', 'to',
    'empty', 'empty_like', 'empty_strided', 'resize_', 'item', '_local_scalar_dense', 'zeros',
    'contiguous', 'flatten', '_reshape_alias', 'split', 'chunk', 'unbind'))


def aten_ops_by_kind(events) -> dict:
    """The ATen ops that pass over data (views and allocations left out)
    called from Python, not from inside another ATen op, counted under the
    innermost ``module::`` event around each."""
    counts: dict = {}
    for e in events:
        if not e.name.startswith('aten::') or e.name in METADATA_OPS:
            continue
        parent, kind = e.cpu_parent, None
        while parent is not None:
            if parent.name.startswith('aten::'):
                break  # nested in another ATen op: counted there
            if parent.name.startswith('module::'):
                kind = parent.name[len('module::'):]
                break
            parent = parent.cpu_parent
        if kind is not None and (parent is None or not parent.name.startswith('aten::')):
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                   choices=['cpu', 'cuda'])
    p.add_argument('--arch', default='tiny')
    p.add_argument('--impl', default='auto', choices=['auto', 'torch', 'triton', 'reference'])
    p.add_argument('--shape', default='1x3x800x1344', help='det, seg, cls or NxCxHxW')
    p.add_argument('--dtype', default='fp32', choices=list(bench.DTYPES))
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--channels-last', default='auto', choices=['auto', 'off'],
                   help="the backbone's channels_last inside ('off': NCHW inside)")
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--rows', type=int, default=15, help='ops listed')
    p.add_argument('--json', metavar='OUT')
    args = p.parse_args(argv)
    exit_unless_writable((args.json, '--json'))
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = bench.parse_shape(args.shape)
    model = SNNMLP(arch=args.arch, impl=args.impl,
                   channels_last=args.channels_last == 'auto').to(device)
    for name, m in model.named_modules():  # each leaf module's inclusive time as one event
        kind = module_kind(m)
        # plain GELUs and the tiled convs run in the shortcuts below (a replaced
        # forward would turn those off); tiles only on channels_last, one thread
        tiles = args.channels_last == 'auto' and torch.get_num_threads() == 1
        shortcut = layers.plain_gelu(m) or (tiles and name.endswith(TILED_CONVS))
        if kind is not None and not shortcut:
            m.forward = _labelled(m.forward, kind)
    for name, kind in SHORTCUTS.items():
        setattr(layers, name, _labelled(getattr(layers, name), kind))
    step = bench.make_step(model, torch.randn(shape, device=device), 'fwd',
                           bench.DTYPES[args.dtype])
    for _ in range(max(args.warmup, 1)):
        step()
    bench.sync(device)
    on_gpu = device.type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as prof:
        with record_function('module::SNNMLP (total)'):
            step()
        bench.sync(device)
    events = prof.key_averages()
    print(events.table(sort_by='self_cuda_time_total' if on_gpu else 'self_cpu_time_total',
                       row_limit=args.rows))

    def inclusive_us(e):
        return getattr(e, 'device_time_total', 0) if on_gpu else e.cpu_time_total
    kinds = {e.key[len('module::'):]: (inclusive_us(e), e.count)
             for e in events if e.key.startswith('module::')}
    total = kinds.pop('SNNMLP (total)')[0]
    ops = aten_ops_by_kind(prof.events())
    rows = [dict(kind=k, ms=round(us / 1e3, 2), calls=n, aten_ops=ops.get(k, 0),
                 share=round(100 * us / total, 1))
            for k, (us, n) in sorted(kinds.items(), key=lambda kv: -kv[1][0])]
    other = total - sum(us for us, _ in kinds.values())
    rows.append(dict(kind='other (merging, pads, layout, ...)', ms=round(other / 1e3, 2),
                     calls=None, aten_ops=ops.get('SNNMLP (total)', 0),
                     share=round(100 * other / total, 1)))
    rows.append(dict(kind='total forward', ms=round(total / 1e3, 2), calls=1,
                     aten_ops=sum(ops.values()), share=100.0))
    print(f'\nSNN-MLP-{args.arch} forward {bench.shape_text(shape)} {args.dtype} on {device}, '
          f'impl={args.impl}: time by module kind (inclusive, profiler overhead included)')
    print(text_table(rows, KIND_COLUMNS))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(environment=bench.environment(device), by_kind=rows), f, indent=1)
    return rows


if __name__ == '__main__':
    main()
