"""``python -m mmsnnmlp.check``: what this installation runs, and whether it works.

Prints the versions (python, torch, triton, mmengine, and mmcv, mmdet, mmseg,
timm where installed), the devices (CPU model and the instruction set ATen
uses; each GPU), which implementation ``impl='auto'`` picks for each op on
each device, the results of the Triton kernels' self-check (the probes
``'auto'`` runs before it first uses them, see :mod:`mmsnnmlp.ops.selfcheck`),
and a short speed line of the fused ops against the reference ops.

The self-check runs on CUDA devices; on CPU only under ``TRITON_INTERPRET=1``
(Triton's interpreter: slow, float32 only by default). The exit code is 1 if
a self-check fails, else 0. Include the output in bug reports.
"""
import argparse
import importlib.util
import os
import platform
import sys
import time
from importlib import metadata
from typing import Dict, List, Optional, Tuple

import torch

from mmsnnmlp.ops import dispatch, lif, norm_act, selfcheck
from mmsnnmlp.ops.triton_utils import interpreting, triton
from mmsnnmlp.version import __version__

PACKAGES = ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'timm')
DISTRIBUTIONS = {'mmcv': ('mmcv', 'mmcv-lite', 'mmcv-full'), 'mmseg': ('mmsegmentation',)}
DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16,
          'float64': torch.float64}
CUDA_DTYPES = ('float32', 'bfloat16', 'float16')
INTERPRETER_DTYPES = ('float32',)
# stage 1 of a 224x224 image (CPU) or of a batch of them (CUDA)
SPEED_SHAPES = {'cpu': (1, 96, 56, 56), 'cuda': (16, 96, 56, 56)}


def _version(name: str) -> str:
    """A package's version without importing it (mmdet and mmseg take seconds)."""
    if importlib.util.find_spec(name) is None:
        return 'not installed'
    for dist in DISTRIBUTIONS.get(name, (name,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return getattr(__import__(name), '__version__', 'unknown')


def versions() -> Dict[str, str]:
    out = {'mmsnnmlp': __version__, 'python': platform.python_version(),
           'torch': torch.__version__,
           'triton': triton.__version__ if triton is not None else 'not importable'}
    out.update((name, _version(name)) for name in PACKAGES)
    if torch.version.cuda:
        out['cuda (torch built with)'] = torch.version.cuda
    return out


def _cpu() -> str:
    from mmsnnmlp.analysis.benchmark import cpu_model
    try:
        isa = torch.backends.cpu.get_cpu_capability()
    except Exception:  # torch < 2.2
        isa = 'n/a'
    return f'{cpu_model()}, ISA {isa}, {torch.get_num_threads()} threads'


def devices() -> List[torch.device]:
    found = [torch.device('cpu')]
    if torch.cuda.is_available():
        found += [torch.device('cuda', i) for i in range(torch.cuda.device_count())]
    return found


def _device_text(device: torch.device) -> str:
    if device.type == 'cpu':
        return _cpu()
    props = torch.cuda.get_device_properties(device)
    return (f'{props.name}, sm_{props.major}{props.minor}, '
            f'{props.total_memory / 2**30:.0f} GiB')


def auto_choice(op: str, device: torch.device, failed: Dict[str, str]) -> str:
    """What 'auto' runs for ``op`` on ``device`` (eagerly)."""
    choice = dispatch._auto_choice(torch.empty(0, device=device), op)
    if choice == 'triton' and op in failed:
        return f'torch (the Triton self-check failed: {failed[op]})'
    return choice


def _compile_note(device: torch.device) -> str:
    if device.type == 'cuda' or os.environ.get(dispatch.ENV_VAR):
        return ''
    return ' (under torch.compile: the reference ops, which the compiler fuses)'


def run_self_checks(device: torch.device, dtypes) -> List[selfcheck.SelfCheck]:
    return [selfcheck.probe(op, device, DTYPES[dtype]) for dtype in dtypes
            for op in selfcheck.OPS]


def _median_ms(fn, device: torch.device, seconds: float) -> Tuple[float, int]:
    """Median time of ``fn`` over as many calls as fit in about ``seconds``
    (at least 2), after one untimed call."""
    from mmsnnmlp.analysis.benchmark import sync, time_fn
    t0 = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - t0
    iters = int(min(200, max(2, seconds / max(first, 1e-6) - 1)))
    return time_fn(fn, device, warmup=0, iters=iters)['median_ms'], iters


def speed(device: torch.device, seconds: float) -> List[str]:
    """Forward + backward of each fused op ('auto') against the reference
    ops, median times, about ``seconds`` in all."""
    shape = SPEED_SHAPES[device.type]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).to(device)
    grad = torch.randn(shape, generator=gen).to(device)
    tau = torch.tensor([0.25], device=device, requires_grad=True)
    vth = torch.tensor([0.25], device=device, requires_grad=True)
    weight = torch.ones(shape[1], device=device, requires_grad=True)
    bias = torch.zeros(shape[1], device=device, requires_grad=True)
    ops = {'lif along H': lambda t, impl: lif(t, tau, vth, 4, 2, impl),
           'lif along W': lambda t, impl: lif(t, tau, vth, 4, 3, impl),
           'norm_act + GELU': lambda t, impl: norm_act(t, weight, bias, 1e-5, 'gelu', impl)}
    per_run = seconds / (2 * len(ops))
    lines = []
    for name, op in ops.items():
        times = {}
        for impl in ('auto', 'reference'):
            def step(op=op, impl=impl):
                op(x.detach().requires_grad_(True), impl).backward(grad)
            times[impl], iters = _median_ms(step, device, per_run)
        lines.append(f'{name}: fused {times["auto"]:.3f} ms, reference '
                     f'{times["reference"]:.3f} ms ({times["reference"] / times["auto"]:.2f}x, '
                     f'median of {iters})')
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='python -m mmsnnmlp.check',
                                description=__doc__.split('\n\n')[0])
    p.add_argument('--seconds', type=float, default=10,
                   help='time for the speed line (0: skip it; default: %(default)s)')
    p.add_argument('--dtypes', nargs='+', choices=list(DTYPES), default=None,
                   help=f'self-check dtypes (default: {" ".join(CUDA_DTYPES)} on CUDA, '
                        f'{" ".join(INTERPRETER_DTYPES)} under the interpreter)')
    args = p.parse_args(argv)

    print(f'mmsnnmlp {__version__} check')
    print('\nversions')
    for name, version in versions().items():
        print(f'  {name}: {version}')
    env = {v: os.environ[v] for v in (dispatch.ENV_VAR, selfcheck.ENV_VAR, 'TRITON_INTERPRET')
           if v in os.environ}
    print('  environment: ' + (', '.join(f'{k}={v}' for k, v in env.items()) or 'none set'))

    print('\ndevices')
    for device in devices():
        print(f'  {device}: {_device_text(device)}')
    if hasattr(os, 'getloadavg'):  # speed lines mean little on a loaded machine
        print(f'  load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs')

    print('\nself-check (the Triton kernels against the PyTorch path, forward and backward)')
    if not selfcheck.enabled():
        print(f'  note: {selfcheck.ENV_VAR}=0 turns it off for impl="auto"; run here anyway')
    checked, failed = [], {}
    for device in devices():
        if triton is None:
            print(f'  {device}: not run, triton does not import')
            continue
        if device.type == 'cpu' and not interpreting():
            print(f'  {device}: runs on CUDA devices only (TRITON_INTERPRET=1 runs it here, '
                  "under Triton's interpreter)")
            continue
        dtypes = args.dtypes or (CUDA_DTYPES if device.type == 'cuda' else INTERPRETER_DTYPES)
        for result in run_self_checks(device, dtypes):
            checked.append(result)
            status = 'ok' if result.ok else f'FAILED: {result.describe()}'
            worst = max((r.max_err for r in result.results), default=float('nan'))
            print(f'  {device} {result.op} {result.dtype}: {status} (max error {worst:.1e}, '
                  f'{len(result.results)} cases, {result.ms:.0f} ms)', flush=True)
            if not result.ok:
                failed.setdefault(result.op, f'{result.dtype} on {device}')

    print("\nimpl='auto' picks")
    for device in devices():
        picks = ', '.join(f'{op} {auto_choice(op, device, failed)}' for op in selfcheck.OPS)
        print(f'  {device}: {picks}{_compile_note(device)}')

    if args.seconds > 0:
        device = devices()[-1]  # a GPU if there is one
        print(f'\nspeed on {device} ({"x".join(map(str, SPEED_SHAPES[device.type]))} float32, '
              'forward + backward)', flush=True)
        for line in speed(device, args.seconds):
            print(f'  {line}', flush=True)

    bad = [r for r in checked if not r.ok]
    print(f'\nresult: {"FAILED" if bad else "ok"} ' + (
        f'({len(checked) - len(bad)} of {len(checked)} self-checks pass)' if checked else
        '(no self-check ran here)'))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
