"""Time backbones side by side: SNN-MLP T/S/B against Swin-T/S and ResNet-50.

Every model is built, warmed up and timed in this one process, on the same
input, so the numbers compare. Timing: ``--warmup`` untimed iterations, then
the median of ``--iters`` timed ones (CUDA: events around each iteration;
CPU: perf_counter, plus the process CPU time, which other processes' load
inflates less). ``--rounds`` repeats the models round-robin, for machines
shared with other work. Peak memory: CUDA ``max_memory_allocated`` over the
timed iterations (weights included); CPU: the growth of the peak RSS over the
timed iterations (Linux /proc, else ``resource``; 'n/a' where neither works).
glibc serves buffers above 32 MiB by mmap, so those count; smaller ones are
recycled by malloc and may not.

Models (``--models``):
    snnmlp-t, snnmlp-s, snnmlp-b   mmsnnmlp's SNNMLP (4 outputs, each normed)
    snnmlp-t-ref                   SNN-MLP-T with the unfused reference LIF
    swin-t, swin-s                 mmdet's SwinTransformer (timm's without mmdet)
    resnet50                       mmdet's ResNet (torchvision's trunk without mmdet)

Examples::

    # the CPU smoke run
    python tools/analysis_tools/benchmark_backbone.py --device cpu \\
        --shape 1x3x224x224 --iters 3 --warmup 1
    # detection shape, training step, bf16 autocast, results to JSON
    python tools/analysis_tools/benchmark_backbone.py --device cuda --shape det \\
        --mode train --dtype bf16 --json bench.json
    # the LIF op alone (fast path, reference, Triton) at 2x96x200x336
    python tools/analysis_tools/benchmark_backbone.py --lif-only --device cuda
    # where SNN-MLP-T's forward spends its time
    python tools/analysis_tools/benchmark_backbone.py --profile --shape 1x3x800x1344
"""
import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

SHAPES = {'det': (2, 3, 800, 1333), 'seg': (2, 3, 512, 512)}
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
MODELS = ('snnmlp-t', 'snnmlp-s', 'snnmlp-b', 'snnmlp-t-ref', 'swin-t', 'swin-s', 'resnet50')
DEFAULT_MODELS = ('snnmlp-t', 'snnmlp-t-ref', 'swin-t', 'resnet50')
LIF_SHAPE = (2, 96, 200, 336)  # stage 1 of SNN-MLP-T at 800x1344


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


def _mmdet_backbones():
    """mmdet's backbone classes, or None when mmdet (or mmcv) does not import."""
    try:
        from mmdet.models.backbones import ResNet, SwinTransformer
    except Exception:  # ImportError, or mmcv without its compiled ops
        return None
    return SwinTransformer, ResNet


class _TimmSwin(nn.Module):
    """timm's Swin as a 4-output NCHW backbone (fallback without mmdet).

    timm wants H and W divisible by the 4-pixel patch; like mmdet's data
    preprocessor we pad bottom/right to a multiple of 32."""

    def __init__(self, name: str, height: int, width: int):
        super().__init__()
        import timm
        self.pad = ((-height) % 32, (-width) % 32)
        self.body = timm.create_model(
            name, pretrained=False, features_only=True, strict_img_size=False,
            img_size=(height + self.pad[0], width + self.pad[1]), drop_path_rate=0.2)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        if any(self.pad):
            x = nn.functional.pad(x, (0, self.pad[1], 0, self.pad[0]))
        return tuple(f.permute(0, 3, 1, 2) for f in self.body(x))  # NHWC -> NCHW


class _TorchvisionResNet50(nn.Module):
    """torchvision's ResNet-50 without the head, returning C2..C5."""

    def __init__(self):
        super().__init__()
        import torchvision
        net = torchvision.models.resnet50(weights=None)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x, outs = self.stem(x), []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return tuple(outs)


def build_model(name: str, shape: Tuple[int, ...], baselines: str) -> Tuple[nn.Module, str]:
    """(model, implementation note). Weights are random: speed only."""
    if name.startswith('snnmlp'):
        from mmsnnmlp.models import SNNMLP
        arch = {'t': 'tiny', 's': 'small', 'b': 'base'}[name.split('-')[1]]
        note = 'mmsnnmlp, reference LIF' if name.endswith('-ref') else 'mmsnnmlp'
        return SNNMLP(arch=arch), note
    mm = _mmdet_backbones() if baselines in ('auto', 'mmdet') else None
    if mm is None and baselines == 'mmdet':
        raise SystemExit('--baselines mmdet: mmdet backbones do not import here')
    if name in ('swin-t', 'swin-s'):
        depths = [2, 2, 6, 2] if name == 'swin-t' else [2, 2, 18, 2]
        if mm is not None:  # the settings of mmdet's Mask R-CNN Swin configs
            return mm[0](embed_dims=96, depths=depths, num_heads=[3, 6, 12, 24],
                         window_size=7, mlp_ratio=4, qkv_bias=True, drop_path_rate=0.2,
                         patch_norm=True, out_indices=(0, 1, 2, 3)), 'mmdet'
        timm_name = {'swin-t': 'swin_tiny_patch4_window7_224',
                     'swin-s': 'swin_small_patch4_window7_224'}[name]
        return _TimmSwin(timm_name, shape[2], shape[3]), 'timm'
    if name == 'resnet50':
        if mm is not None:
            return mm[1](depth=50, out_indices=(0, 1, 2, 3), style='pytorch'), 'mmdet'
        return _TorchvisionResNet50(), 'torchvision'
    raise SystemExit(f'unknown model {name!r}; choose from {MODELS}')


def _lif_context(name: str):
    """The reference-LIF switch for snnmlp-*-ref, else nothing."""
    if name.endswith('-ref'):
        from mmsnnmlp.ops.lif import use_reference_lif
        return use_reference_lif()
    return contextlib.nullcontext()


# --------------------------------------------------------------------------
# Timing and memory
# --------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _rss_mib() -> Optional[float]:
    """Current resident set size (Linux)."""
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _reset_rss_peak() -> bool:
    """Reset the kernel's peak-RSS counter (Linux >= 4.0); False if unable."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _rss_peak_mib() -> Optional[float]:
    """Peak RSS since the last reset (/proc VmHWM), else since start."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == 'darwin' else peak / 1024
    except (ImportError, OSError):
        return None


class MemoryMeter:
    """Peak memory over a block: CUDA allocator peak, or CPU RSS growth."""

    def __init__(self, device: torch.device):
        self.device, self.peak_mib = device, None

    def __enter__(self):
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._reset_ok = _reset_rss_peak()
            self._start = _rss_mib() if self._reset_ok else _rss_peak_mib()
        return self

    def __exit__(self, *exc):
        if self.device.type == 'cuda':
            self.peak_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            peak = _rss_peak_mib()
            if peak is not None and self._start is not None:
                # without a reset, the growth of the process-wide peak is a
                # lower bound (0 once an earlier model peaked higher)
                self.peak_mib = max(peak - self._start, 0.0)


def time_fn(fn: Callable[[], None], device: torch.device, warmup: int,
            iters: int, cpu_times: Optional[List[float]] = None
            ) -> Tuple[float, List[float], Optional[float]]:
    """(median ms, all ms, peak MiB) of ``fn`` after ``warmup`` calls.

    On CPU, also appends each iteration's process CPU time (ms, all threads)
    to ``cpu_times``: unlike wall time it does not grow while other
    processes hold the cores."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    with MemoryMeter(device) as mem:
        for _ in range(iters):
            if device.type == 'cuda':
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
                if cpu_times is not None:
                    cpu_times.append((time.process_time() - c0) * 1e3)
    return statistics.median(times), times, mem.peak_mib


def _autocast(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_step(model: nn.Module, x: Tensor, mode: str, dtype: torch.dtype,
              lif_ctx) -> Callable[[], None]:
    """One iteration: forward (no grad), or forward + backward of a
    random-weighted sum of all outputs (so every gradient is non-trivial)."""
    device = x.device
    if mode == 'fwd':
        model.eval()

        def step():
            with lif_ctx, torch.no_grad(), _autocast(device, dtype):
                model(x)
        return step

    model.train()
    weights: List[Tensor] = []

    def step():
        with lif_ctx, _autocast(device, dtype):
            outs = model(x)
            outs = outs if isinstance(outs, (tuple, list)) else (outs,)
            if not weights:  # fixed random weights, one tensor per output
                gen = torch.Generator(device='cpu').manual_seed(0)
                weights.extend(torch.randn(o.shape, generator=gen).to(device) for o in outs)
            loss = sum((o.float() * w).sum() for o, w in zip(outs, weights))
        loss.backward()
        model.zero_grad(set_to_none=True)
    return step


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def parse_shape(text: str, batch: int) -> Tuple[int, int, int, int]:
    if text == 'cls':
        return (batch, 3, 224, 224)
    if text in SHAPES:
        return SHAPES[text]
    try:
        dims = tuple(int(v) for v in text.lower().split('x'))
    except ValueError:
        dims = ()
    if len(dims) != 4 or min(dims) < 1:
        raise SystemExit(f'--shape takes cls, det, seg or NxCxHxW, got {text!r}')
    return dims


def bench_models(args, device: torch.device) -> List[Dict]:
    """Build every model, then time them round-robin for ``--rounds`` rounds
    (so that load from other processes hits all models alike)."""
    shape = parse_shape(args.shape, args.batch)
    dtype = DTYPES[args.dtype]
    x = torch.randn(shape, device=device)
    if args.channels_last:
        x = x.to(memory_format=torch.channels_last)
    entries = []
    for name in args.models:
        torch.manual_seed(0)
        model, impl = build_model(name, shape, args.baselines)
        model = model.to(device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        entries.append(dict(name=name, impl=impl, params=params, times=[], cpu=[], peak=None,
                            step=make_step(model, x, args.mode, dtype, _lif_context(name))))
    for rnd in range(args.rounds):
        for e in entries:
            warmup = args.warmup if rnd == 0 else min(args.warmup, 1)
            median, times, peak = time_fn(e['step'], device, warmup, args.iters, e['cpu'])
            e['times'] += times
            if peak is not None:
                e['peak'] = max(peak, e['peak'] or 0.0)
            print(f"  round {rnd + 1}: {e['name']:<13} {median:10.1f} ms", file=sys.stderr,
                  flush=True)
    rows = []
    for e in entries:
        median = statistics.median(e['times'])
        rows.append(dict(model=e['name'], impl=e['impl'], params_m=round(e['params'], 2),
                         shape='x'.join(map(str, shape)), mode=args.mode, dtype=args.dtype,
                         median_ms=round(median, 2), min_ms=round(min(e['times']), 2),
                         cpu_ms=round(statistics.median(e['cpu']), 2) if e['cpu'] else None,
                         times_ms=[round(t, 2) for t in e['times']],
                         img_per_s=round(shape[0] / median * 1e3, 2),
                         peak_mem_mib=None if e['peak'] is None else round(e['peak'], 1)))
    return rows


def print_table(rows: List[Dict], columns: List[Tuple[str, str, str]]) -> None:
    """columns: (key, header, format)."""
    def cell(row, key, fmt):
        value = row.get(key)
        return 'n/a' if value is None else format(value, fmt)
    cells = [[header for _, header, _ in columns]]
    cells += [[cell(r, k, f) for k, _, f in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    for i, line in enumerate(cells):
        print('  '.join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(line, widths))))
        if i == 0:
            print('  '.join('-' * w for w in widths))


MODEL_COLUMNS = [('model', 'model', ''), ('impl', 'impl', ''), ('params_m', 'params (M)', '.2f'),
                 ('shape', 'shape', ''), ('mode', 'mode', ''), ('dtype', 'dtype', ''),
                 ('median_ms', 'median ms', '.1f'), ('min_ms', 'min ms', '.1f'),
                 ('cpu_ms', 'cpu-time ms', '.1f'),
                 ('img_per_s', 'img/s', '.2f'),
                 ('peak_mem_mib', 'peak mem (MiB)', '.0f')]


@contextlib.contextmanager
def _triton_disabled():
    """Force lif() onto its PyTorch path (lif_triton.usable reads this)."""
    old = os.environ.get('MMSNNMLP_DISABLE_TRITON')
    os.environ['MMSNNMLP_DISABLE_TRITON'] = '1'
    try:
        yield
    finally:
        if old is None:
            del os.environ['MMSNNMLP_DISABLE_TRITON']
        else:
            os.environ['MMSNNMLP_DISABLE_TRITON'] = old


def bench_lif(args, device: torch.device) -> List[Dict]:
    """The LIF op alone, group 4, along H and W; GB/s counts the minimum
    traffic: read x + write out (forward), plus read x, read dout and write
    dx (backward)."""
    from mmsnnmlp.ops import lif, lif_reference
    from mmsnnmlp.ops import lif_triton
    shape = parse_shape(args.lif_shape, args.batch)
    dtype = DTYPES[args.dtype]
    x = torch.randn(shape, device=device, dtype=dtype)
    grad = torch.randn_like(x)
    tau = torch.tensor([0.25], device=device, requires_grad=args.mode == 'train')
    vth = torch.tensor([0.25], device=device, requires_grad=args.mode == 'train')
    impls = {'fast (torch)': (lif, _triton_disabled), 'reference': (lif_reference, contextlib.nullcontext)}
    if lif_triton.usable(x):
        impls['triton'] = (lif_triton.lif, contextlib.nullcontext)
    elif device.type == 'cuda':
        print('triton LIF not usable here (no triton, or MMSNNMLP_DISABLE_TRITON set)',
              file=sys.stderr)
    passes = 2 if args.mode == 'fwd' else 5
    nbytes = passes * x.numel() * x.element_size()
    rows = []

    out = torch.empty_like(x)
    copy_ms, _, _ = time_fn(lambda: out.copy_(x), device, args.warmup, args.iters)
    rows.append(dict(op='copy (x -> out)', dim='-', median_ms=round(copy_ms, 3),
                     gb_per_s=round(2 * x.numel() * x.element_size() / copy_ms / 1e6, 1)))
    for dim in (2, 3):
        for name, (fn, ctx) in impls.items():
            def step(fn=fn, ctx=ctx, dim=dim):
                with ctx():
                    if args.mode == 'fwd':
                        with torch.no_grad():
                            fn(x, tau, vth, 4, dim)
                    else:
                        xi = x.detach().requires_grad_(True)
                        fn(xi, tau, vth, 4, dim).backward(grad)
            median, _, peak = time_fn(step, device, args.warmup, args.iters)
            rows.append(dict(op=f'lif {name}', dim='H' if dim == 2 else 'W',
                             median_ms=round(median, 3),
                             gb_per_s=round(nbytes / median / 1e6, 1)))
            print(f'  lif {name} dim={dim}: {median:.3f} ms', file=sys.stderr, flush=True)
    for row in rows:
        row.update(shape='x'.join(map(str, shape)), dtype=args.dtype, mode=args.mode)
    return rows


LIF_COLUMNS = [('op', 'op', ''), ('dim', 'along', ''), ('shape', 'shape', ''),
               ('dtype', 'dtype', ''), ('mode', 'mode', ''),
               ('median_ms', 'median ms', '.3f'), ('gb_per_s', 'GB/s', '.1f')]


def _module_kind(m: nn.Module) -> Optional[str]:
    """A label for the leaf modules whose time we attribute."""
    from mmsnnmlp.ops import LIF
    if isinstance(m, LIF):
        return 'LIF'
    if isinstance(m, nn.Conv2d):
        if m.groups > 1 and m.groups == m.in_channels:
            return 'Conv2d depthwise'
        return 'Conv2d 1x1' if m.kernel_size == (1, 1) else 'Conv2d kxk'
    if isinstance(m, (nn.GroupNorm, nn.GELU, nn.Linear, nn.LayerNorm)):
        return type(m).__name__
    return None


def profile_snnmlp(args, device: torch.device) -> Dict:
    """torch.profiler over one SNN-MLP-T forward: top ops by self time and
    the share of each kind of leaf module (LIF, 1x1 convs, norms, ...)."""
    from torch.profiler import ProfilerActivity, profile, record_function
    from mmsnnmlp.models import SNNMLP
    shape = parse_shape(args.shape, args.batch)
    dtype = DTYPES[args.dtype]
    model = SNNMLP(arch='tiny').to(device).eval()
    x = torch.randn(shape, device=device)
    if args.channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    # Label every leaf module so its inclusive time shows up as one event.
    for m in model.modules():
        kind = _module_kind(m)
        if kind is not None:
            def labelled(*a, _f=m.forward, _k=kind, **kw):
                with record_function(f'module::{_k}'):
                    return _f(*a, **kw)
            m.forward = labelled
    run = make_step(model, x, 'fwd', dtype, contextlib.nullcontext())
    for _ in range(max(args.warmup, 1)):
        run()
    _sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])
    with profile(activities=activities) as prof:
        with record_function('module::SNNMLP (total)'):
            run()
        _sync(device)
    on_gpu = device.type == 'cuda'
    events = prof.key_averages()
    sort = 'self_cuda_time_total' if on_gpu else 'self_cpu_time_total'
    print(events.table(sort_by=sort, row_limit=args.profile_rows))

    def inclusive_us(e):
        return getattr(e, 'device_time_total', e.cuda_time_total) if on_gpu else e.cpu_time_total
    kinds = {e.key[len('module::'):]: (inclusive_us(e), e.count)
             for e in events if e.key.startswith('module::')}
    total = kinds.pop('SNNMLP (total)')[0]
    rows = [dict(kind=k, ms=round(us / 1e3, 2), calls=n, share=round(100 * us / total, 1))
            for k, (us, n) in sorted(kinds.items(), key=lambda kv: -kv[1][0])]
    other = total - sum(us for us, _ in kinds.values())
    rows.append(dict(kind='other (adds, merging, pads, ...)', ms=round(other / 1e3, 2),
                     calls=None, share=round(100 * other / total, 1)))
    rows.append(dict(kind='total forward', ms=round(total / 1e3, 2), calls=1, share=100.0))
    print(f'\nSNN-MLP-T forward {"x".join(map(str, shape))} {args.dtype} on {device}: '
          'time by module kind (inclusive, profiler overhead included)')
    print_table(rows, [('kind', 'module kind', ''), ('ms', 'ms', '.2f'), ('calls', 'calls', 'd'),
                       ('share', '% of forward', '.1f')])
    return dict(shape='x'.join(map(str, shape)), dtype=args.dtype, by_kind=rows)


def _loadavg() -> str:
    """1-minute load average: other processes on the cores skew CPU timings."""
    try:
        return f'{os.getloadavg()[0]:.2f}'
    except (AttributeError, OSError):
        return 'n/a'


def environment(device: torch.device) -> Dict:
    env = dict(torch=torch.__version__, python=platform.python_version(),
               threads=torch.get_num_threads(), device=str(device),
               processor=platform.processor() or platform.machine(), cpus=os.cpu_count(),
               loadavg_1min=_loadavg())
    if device.type == 'cuda':
        env['gpu'] = torch.cuda.get_device_name(device)
    return env


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', nargs='+', default=list(DEFAULT_MODELS), choices=MODELS,
                   metavar='MODEL', help=f'from {", ".join(MODELS)} (default: %(default)s)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                   choices=['cpu', 'cuda'])
    p.add_argument('--dtype', default='fp32', choices=list(DTYPES),
                   help='fp32, or bf16/fp16 autocast (for --lif-only: the tensor dtype)')
    p.add_argument('--shape', default='det',
                   help='cls (Bx3x224x224), det (2x3x800x1333), seg (2x3x512x512) or NxCxHxW')
    p.add_argument('--batch', type=int, default=1, help='B of --shape cls (default: 1)')
    p.add_argument('--mode', default='fwd', choices=['fwd', 'train'],
                   help='forward without grad, or forward + backward')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--iters', type=int, default=10, help='timed iterations per round')
    p.add_argument('--rounds', type=int, default=1,
                   help='time the models round-robin this many times (noisy machines)')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    p.add_argument('--channels-last', action='store_true',
                   help='run models and inputs in channels_last memory format')
    p.add_argument('--baselines', default='auto', choices=['auto', 'mmdet', 'timm'],
                   help='Swin/ResNet from mmdet, or timm/torchvision (auto: mmdet if it imports)')
    p.add_argument('--lif-only', action='store_true', help='time the LIF op alone')
    p.add_argument('--lif-shape', default='x'.join(map(str, LIF_SHAPE)),
                   help='NxCxHxW for --lif-only (default: %(default)s)')
    p.add_argument('--profile', action='store_true',
                   help='profile one SNN-MLP-T forward at --shape')
    p.add_argument('--profile-rows', type=int, default=15)
    p.add_argument('--json', metavar='OUT', help='also write the results to this JSON file')
    args = p.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.rounds < 1:
        p.error('--iters and --rounds must be >= 1, --warmup >= 0')
    return args


def main(argv=None) -> Dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: CUDA is not available')
    if args.threads:
        torch.set_num_threads(args.threads)
    result = dict(args=vars(args), environment=environment(device))
    if args.profile:
        result['profile'] = profile_snnmlp(args, device)
    elif args.lif_only:
        result['lif'] = bench_lif(args, device)
        print_table(result['lif'], LIF_COLUMNS)
    else:
        result['models'] = bench_models(args, device)
        print_table(result['models'], MODEL_COLUMNS)
    env = result['environment']
    what = ('one profiled forward' if args.profile else
            f'median of {args.iters * (1 if args.lif_only else args.rounds)} iterations')
    print(f"\n{env['device']} {env.get('gpu', env['processor'])}, {env['threads']} threads, "
          f"torch {env['torch']}; {what} after {args.warmup} warm-up; "
          f"load average {_loadavg()}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
