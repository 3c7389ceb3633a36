"""Timing, memory and environment of the benchmark tools
(``tools/analysis_tools/benchmark_backbone.py``, ``gpu_report.py``, ...).

Needs only torch (and timm for the Swin baselines of
:mod:`mmsnnmlp.analysis.baselines`). Timing: warm-up calls, then the median of timed
calls (CUDA: events around each call; CPU: wall time, plus the process CPU
time, which load from other processes inflates less). Peak memory: CUDA
``max_memory_allocated`` over the timed calls (weights included); CPU: the
growth of the peak RSS over them (Linux /proc; None where unavailable).
"""
import contextlib
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .baselines import build_backbone

SHAPES = {'det': (2, 3, 800, 1344), 'seg': (2, 3, 512, 512)}
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def parse_shape(text: str, batch: int = 1) -> Tuple[int, int, int, int]:
    """'cls' (batch x 3 x 224 x 224), 'det', 'seg' or 'NxCxHxW'."""
    if text == 'cls':
        return (batch, 3, 224, 224)
    if text in SHAPES:
        return SHAPES[text]
    try:
        dims = tuple(int(v) for v in text.lower().split('x'))
    except ValueError:
        dims = ()
    if len(dims) != 4 or min(dims) < 1:
        raise ValueError(f'a shape is cls, det, seg or NxCxHxW, got {text!r}')
    return dims


def shape_text(shape: Sequence[int]) -> str:
    return 'x'.join(map(str, shape))


def sync(device: torch.device) -> None:
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
    """Peak memory over a block: CUDA allocator peak, or CPU RSS growth
    (glibc serves buffers above 32 MiB by mmap, so those count; smaller ones
    are recycled by malloc and may not)."""

    def __init__(self, device: torch.device):
        self.device, self.peak_mib = device, None

    def __enter__(self) -> 'MemoryMeter':
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._reset_ok = _reset_rss_peak()
            self._start = _rss_mib() if self._reset_ok else _rss_peak_mib()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            self.peak_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            peak = _rss_peak_mib()
            if peak is not None and self._start is not None:
                # without a reset, the growth of the process-wide peak is a
                # lower bound (0 once an earlier model peaked higher)
                self.peak_mib = max(peak - self._start, 0.0)


class Timing(dict):
    """median_ms, min_ms, times_ms, cpu_ms (CPU only), peak_mib."""


def time_fn(fn: Callable[[], object], device: torch.device, warmup: int = 3,
            iters: int = 10) -> Timing:
    """Time ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times, cpu = [], []
    with MemoryMeter(device) as mem:
        for _ in range(iters):
            if device.type == 'cuda':
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
                cpu.append((time.process_time() - c0) * 1e3)
    return Timing(median_ms=statistics.median(times), min_ms=min(times), times_ms=times,
                  cpu_ms=statistics.median(cpu) if cpu else None, peak_mib=mem.peak_mib)


def autocast(device: torch.device, dtype: torch.dtype):
    """Autocast to ``dtype`` (nothing for float32)."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_step(model: nn.Module, x: Tensor, mode: str, dtype: torch.dtype,
              run: Optional[Callable] = None) -> Callable[[], None]:
    """One iteration of ``model`` (or of ``run``, e.g. a compiled ``model``):
    'fwd', a forward without grad in eval mode, or 'train', forward + backward
    of a fixed random weighting of all outputs (every gradient non-trivial)."""
    device = x.device
    run = model if run is None else run
    if mode == 'fwd':
        model.eval()

        def step():
            with torch.no_grad(), autocast(device, dtype):
                run(x)
        return step
    if mode != 'train':
        raise ValueError(f"mode is 'fwd' or 'train', got {mode!r}")
    model.train()
    weights: List[Tensor] = []

    def step():
        with autocast(device, dtype):
            outs = run(x)
            outs = outs if isinstance(outs, (tuple, list)) else (outs,)
            if not weights:  # fixed random weights, one tensor per output
                gen = torch.Generator(device='cpu').manual_seed(0)
                weights.extend(torch.randn(o.shape, generator=gen).to(device) for o in outs)
            loss = sum((o.float() * w).sum() for o, w in zip(outs, weights))
        loss.backward()
        model.zero_grad(set_to_none=True)
    return step


# --------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------


def _loadavg() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def cpu_model() -> str:
    """The processor's model name (Linux /proc/cpuinfo), else platform's guess."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> Dict:
    """Versions, device and load: what a reader needs to compare numbers."""
    env = dict(torch=torch.__version__, python=platform.python_version(),
               threads=torch.get_num_threads(), device=str(device), cpu=cpu_model(),
               cpus=os.cpu_count(), loadavg_1min=_loadavg(),
               cpu_capability=_cpu_capability(), cpu_flags=_cpu_flags())
    try:
        import triton
        env['triton'] = triton.__version__
    except Exception:
        env['triton'] = None
    if device.type == 'cuda':
        env['gpu'] = torch.cuda.get_device_name(device)
    return env


def _cpu_capability() -> Optional[str]:
    """The vector instruction set ATen's CPU kernels use (AVX2, AVX512, ...)."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except Exception:  # torch < 2.2
        return None


def _cpu_flags() -> str:
    """The CPU flags that decide oneDNN's and ATen's code paths."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = next(line for line in f if line.startswith('flags')).split()
    except (OSError, StopIteration):
        return 'n/a'
    wanted = ('avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512_fp16', 'amx_bf16', 'amx_tile')
    return ' '.join(f for f in wanted if f in flags)


# --------------------------------------------------------------------------
# Whole backbones
# --------------------------------------------------------------------------


def time_models(names: Sequence[str], shape: Sequence[int], device: torch.device,
                modes: Sequence[str] = ('fwd', ), dtypes: Sequence[str] = ('fp32', ),
                compile_modes: Sequence[bool] = (False, ), compile_backend: str = 'inductor',
                warmup: int = 3, iters: int = 10, rounds: int = 1, baselines: str = 'auto',
                out_indices: Sequence[int] = (0, 1, 2, 3), channels_last: bool = False,
                freeze: bool = False, log: Callable[[str], None] = print) -> List[Dict]:
    """One row per (model, mode, dtype, compiled): median ms, img/s, peak MiB.

    ``rounds == 1``: each model is built, timed in every setting and freed
    before the next (peak memory is then that model's alone). ``rounds > 1``:
    all models are built first and timed round-robin, so that load from other
    processes hits all alike (shared CPUs). SNN-MLP compiles with
    ``fullgraph=True``; the baselines may break graphs. ``channels_last``
    runs models and input in that memory format. ``freeze``: inductor's
    freezing for the compiled inference (weights as constants: oneDNN weight
    prepacking and conv/linear + pointwise fusion on CPU); 'fwd' mode only."""
    if not freeze:
        return _time_models(names, shape, device, modes, dtypes, compile_modes, compile_backend,
                            warmup, iters, rounds, baselines, out_indices, channels_last, log)
    if 'train' in modes or compile_backend != 'inductor':
        raise ValueError("freeze applies to compiled inference: mode 'fwd', backend inductor")
    import torch._inductor.config as inductor_config
    with inductor_config.patch(freezing=True):  # read when the first call compiles
        return _time_models(names, shape, device, modes, dtypes, compile_modes, compile_backend,
                            warmup, iters, rounds, baselines, out_indices, channels_last, log)


def _time_models(names, shape, device, modes, dtypes, compile_modes, compile_backend, warmup,
                 iters, rounds, baselines, out_indices, channels_last, log) -> List[Dict]:
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(tuple(shape), device=device).contiguous(memory_format=layout)
    settings = [(m, d, c) for c in compile_modes for m in modes for d in dtypes]
    rows: Dict[Tuple, Dict] = {}
    built = []

    def build(name):
        torch.manual_seed(0)
        model, note = build_backbone(name, shape, baselines, out_indices)
        model = model.to(device, memory_format=layout)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        runs = {False: model}
        if True in compile_modes:
            runs[True] = torch.compile(model, fullgraph=name.startswith('snnmlp'),
                                       backend=compile_backend)
        steps = {(m, d, c): make_step(model, x, m, DTYPES[d], runs[c]) for m, d, c in settings}
        return dict(name=name, note=note, params=params, steps=steps)

    def run(entry, rnd):
        for setting, step in entry['steps'].items():
            mode, dtype, compiled = setting
            t0 = time.perf_counter()
            timing = time_fn(step, device, warmup if rnd == 0 else min(warmup, 1), iters)
            key = (entry['name'],) + setting
            row = rows.setdefault(key, dict(
                model=entry['name'], impl=entry['note'], params_m=round(entry['params'], 2),
                shape=shape_text(shape), mode=mode, dtype=dtype, compiled=compiled,
                times_ms=[], peak_mib=None))
            row['times_ms'] += [round(t, 3) for t in timing['times_ms']]
            if timing['cpu_ms'] is not None:
                row.setdefault('cpu_times_ms', []).append(timing['cpu_ms'])
            if timing['peak_mib'] is not None:
                row['peak_mib'] = round(max(timing['peak_mib'], row['peak_mib'] or 0.0), 1)
            log(f"  {entry['name']:<12} {mode:<5} {dtype:<4} "
                f"{'compiled' if compiled else 'eager':<8}"
                f" {timing['median_ms']:9.2f} ms  ({time.perf_counter() - t0:.1f} s)")

    for rnd in range(rounds):
        for name in names:
            if rounds == 1:
                entry = build(name)
                run(entry, rnd)
                del entry
                if device.type == 'cuda':
                    torch.cuda.empty_cache()
            else:
                if rnd == 0:
                    built.append(build(name))
                run(built[names.index(name)], rnd)
    for row in rows.values():
        median = statistics.median(row['times_ms'])
        row.update(median_ms=round(median, 3), min_ms=round(min(row['times_ms']), 3),
                   img_per_s=round(shape[0] / median * 1e3, 2))
        if 'cpu_times_ms' in row:  # median over rounds of each round's median
            row['cpu_ms'] = round(statistics.median(row.pop('cpu_times_ms')), 3)
    return list(rows.values())


# --------------------------------------------------------------------------
# The dense GEMMs alone: a floor under any runtime's time
# --------------------------------------------------------------------------


def _is_dense(module: nn.Module) -> bool:
    """An ``nn.Linear``, or a 1x1 ``nn.Conv2d`` (stride 1, groups 1): one GEMM each."""
    if isinstance(module, nn.Linear):
        return True
    return (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1)
            and module.stride == (1, 1) and module.groups == 1)


def dense_gemms(model: nn.Module, x: Tensor) -> Dict[Tuple[int, int, int], int]:
    """The (M, K, N) of each dense layer's GEMM in one forward of ``model``
    on ``x`` (see :func:`_is_dense`), with how often each occurs. Found by
    forward hooks (which also turn off the layers' fused CPU shortcuts, so
    every such layer runs through its module)."""
    counts: Dict[Tuple[int, int, int], int] = {}

    def hook(module, inputs, output):
        if isinstance(module, nn.Linear):
            k, n = module.in_features, module.out_features
        else:
            k, n = module.in_channels, module.out_channels
        key = (output.numel() // n, k, n)
        counts[key] = counts.get(key, 0) + 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if _is_dense(m)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return counts


def time_gemms(gemms: Dict[Tuple[int, int, int], int], device: torch.device,
               warmup: int = 2, iters: int = 5) -> Dict:
    """Time ``gemms`` as plain float32 ``torch.mm`` into preallocated outputs:
    ``dict(ms=, gflop=, gflop_per_s=, count=)``, ms the sum over shapes of
    the median time times the count. A floor under the whole model's time in
    any runtime on the same machine, as far as its GEMM library is as fast
    as this one (no bias, no epilogue, no fresh output memory)."""
    total_ms, flop = 0.0, 0
    for (m, k, n), count in gemms.items():
        a = torch.randn(m, k, device=device)
        b = torch.randn(k, n, device=device)
        out = torch.empty(m, n, device=device)
        timing = time_fn(lambda: torch.mm(a, b, out=out), device, warmup, iters)
        total_ms += timing['median_ms'] * count
        flop += 2 * m * k * n * count
    return dict(ms=round(total_ms, 3), gflop=round(flop / 1e9, 2),
                gflop_per_s=round(flop / 1e6 / total_ms, 1) if total_ms else None,
                count=sum(gemms.values()))


def gemm_floors(names: Sequence[str], shape: Sequence[int], device: torch.device,
                baselines: str = 'auto', warmup: int = 2, iters: int = 5) -> Dict[str, Dict]:
    """:func:`time_gemms` of each model's :func:`dense_gemms` (random weights,
    float32, input of ``shape``)."""
    floors = {}
    x = torch.randn(tuple(shape), device=device)
    for name in names:
        torch.manual_seed(0)
        model = build_backbone(name, shape, baselines)[0].to(device)
        model.eval()  # mmdet's Swin.train() returns None
        floors[name] = time_gemms(dense_gemms(model, x), device, warmup, iters)
        del model
    return floors


# --------------------------------------------------------------------------
# The fused ops alone
# --------------------------------------------------------------------------


def time_ops(device: torch.device, shape: Sequence[int], dtype: str,
             impls: Sequence[str] = ('triton', 'torch', 'reference'), warmup: int = 5,
             iters: int = 20, channels_last: bool = False) -> List[Dict]:
    """LIF (group 4, along H and W) and norm_act (with and without GELU)
    alone, forward and forward + backward, against a device-to-device copy
    of the same tensor. GB/s counts the minimum traffic: read x, write out
    (forward); plus read x, read dout, write dx (backward). 'of copy' is
    that rate over the copy's. On CPU the implementations of each op and
    mode are timed call by call in turn (load from other processes hits all alike);
    on CPU the rows also give the process CPU time (``cpu_ms``) and the
    speed-up over 'reference' by it (``x_ref_cpu``). ``channels_last``: the
    tensors in that memory format (what the backbone's ops see on CPU)."""
    from mmsnnmlp.ops import lif, norm_act
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(tuple(shape), device=device, dtype=DTYPES[dtype]).contiguous(
        memory_format=layout)
    grad = torch.randn_like(x)
    nbytes = x.numel() * x.element_size()
    out = torch.empty_like(x)
    copy = time_fn(lambda: out.copy_(x), device, warmup, iters)['median_ms']
    copy_gbs = 2 * nbytes / copy / 1e6
    rows = [dict(op='copy', impl='torch', mode='fwd', median_ms=round(copy, 4),
                 gb_per_s=round(copy_gbs, 1), of_copy=1.0)]
    tau = torch.tensor([0.25], device=device, requires_grad=True)
    vth = torch.tensor([0.25], device=device, requires_grad=True)
    weight = torch.ones(shape[1], device=device, requires_grad=True)
    bias = torch.zeros(shape[1], device=device, requires_grad=True)
    ops = {'lif along H': lambda t, impl: lif(t, tau, vth, 4, 2, impl),
           'lif along W': lambda t, impl: lif(t, tau, vth, 4, 3, impl),
           'norm_act': lambda t, impl: norm_act(t, weight, bias, 1e-5, None, impl),
           'norm_act gelu': lambda t, impl: norm_act(t, weight, bias, 1e-5, 'gelu', impl)}
    for op, fn in ops.items():
        for mode, passes in (('fwd', 2), ('fwd+bwd', 5)):
            steps = {}
            for impl in impls:
                if mode == 'fwd':
                    def step(fn=fn, impl=impl):
                        with torch.no_grad():
                            fn(x, impl)
                else:
                    def step(fn=fn, impl=impl):
                        fn(x.detach().requires_grad_(True), impl).backward(grad)
                steps[impl] = step
            timings = _time_in_turn(steps, device, warmup, iters)
            ref_cpu = timings['reference']['cpu_ms'] if 'reference' in timings else None
            for impl, timing in timings.items():
                ms = timing['median_ms']
                gbs = passes * nbytes / ms / 1e6
                row = dict(op=op, impl=impl, mode=mode, median_ms=round(ms, 4),
                           gb_per_s=round(gbs, 1), of_copy=round(gbs / copy_gbs, 3))
                if timing['cpu_ms'] is not None:
                    row['cpu_ms'] = round(timing['cpu_ms'], 4)
                    if ref_cpu:
                        row['x_ref_cpu'] = round(ref_cpu / timing['cpu_ms'], 2)
                rows.append(row)
    for row in rows:
        row.update(shape=shape_text(shape), dtype=dtype,
                   layout='channels_last' if channels_last else 'NCHW')
    return rows


def _time_in_turn(steps: Dict[str, Callable[[], None]], device: torch.device, warmup: int,
                  iters: int) -> Dict[str, Timing]:
    """:func:`time_fn` of each step, on CPU one call of each in turn (on CUDA
    one step after the other: CUDA events time a kernel of microseconds, a
    host clock around synchronisations would not)."""
    if device.type == 'cuda':
        return {k: time_fn(step, device, warmup, iters) for k, step in steps.items()}
    for _ in range(warmup):
        for step in steps.values():
            step()
    sync(device)
    times = {k: [] for k in steps}
    cpu = {k: [] for k in steps}
    for _ in range(iters):
        for name, step in steps.items():
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            sync(device)
            times[name].append((time.perf_counter() - t0) * 1e3)
            cpu[name].append((time.process_time() - c0) * 1e3)
    return {k: Timing(median_ms=statistics.median(times[k]), min_ms=min(times[k]),
                      times_ms=times[k], peak_mib=None,
                      cpu_ms=statistics.median(cpu[k]) if device.type == 'cpu' else None)
            for k in steps}
