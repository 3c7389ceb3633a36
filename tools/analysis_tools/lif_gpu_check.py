"""Check and time the fused Triton LIF kernel on a CUDA GPU.

1. Correctness on random awkward shapes, every group size and both axes, for
   float32/float16/bfloat16/float64: the Triton output and dL/dx must equal
   PyTorch's fast path on the same GPU bit for bit (same float32 operations,
   no FMA contraction), dL/dtau and dL/dVth must agree to summation-order
   rounding, and float64 results must match the CPU float64 oracle
   ``lif_reference`` to 1e-12. The parameter gradients must also be
   deterministic (two backward passes, identical sums).
2. Timing at the detection stage-1 tensor (default 2x96x200x336): Triton
   forward and forward+backward against PyTorch's fast path, the unfused
   reference and a device-to-device copy (the bandwidth ceiling). GB/s counts
   the minimum traffic: read x + write out (forward); plus read x, read dout,
   write dx (backward).

Needs only torch, triton and mmengine (no mmcv, mmdet). Exit status 1 if any
check fails. Example::

    python tools/analysis_tools/lif_gpu_check.py --iters 50
"""
import argparse
import os
import random
import statistics
import sys
from typing import Callable, List

import torch

from mmsnnmlp.ops import lif_reference, lif_triton
from mmsnnmlp.ops.lif import _LIFFunction

DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16,
          'fp64': torch.float64}
GROUPS = [1, 2, 3, 4, 5, 7, None]


def _grads(fn, x, g, tau, vth, group, dim):
    """(out, dx, dtau, dvth) of sum(fn(x) * g)."""
    x, tau, vth = (t.detach().clone().requires_grad_(True) for t in (x, tau, vth))
    out = fn(x, tau, vth, group, dim)
    out.backward(g)
    zero = torch.zeros_like(tau)
    return (out.detach(), x.grad, tau.grad if tau.grad is not None else zero,
            vth.grad if vth.grad is not None else zero)


def check_case(shape, dtype, group, dim, gen, dev) -> List[str]:
    """Failures (empty when all is well) for one configuration."""
    x = (torch.randn(shape, generator=gen) * 0.6).to(dev, dtype)
    g = torch.randn(shape, generator=gen).to(dev, dtype)
    tau = (0.1 + 0.8 * torch.rand(1, generator=gen)).to(dev)
    vth = (-0.2 + 0.6 * torch.rand(1, generator=gen)).to(dev)
    if dtype == torch.float64:
        tau, vth = tau.double(), vth.double()
    tri = _grads(lif_triton.lif, x, g, tau, vth, group, dim)
    fast = _grads(_LIFFunction.apply, x, g, tau, vth, group, dim)
    name = f'{tuple(shape)} {dtype} group={group} dim={dim}'
    bad = []
    if tri[0].dtype != dtype or tri[1].dtype != dtype:
        bad.append(f'{name}: dtype {tri[0].dtype}/{tri[1].dtype}')
    for label, a, b in (('out', tri[0], fast[0]), ('dx', tri[1], fast[1])):
        if not torch.equal(a, b):
            bad.append(f'{name}: {label} differs from the torch path by '
                       f'{(a.double() - b.double()).abs().max().item():.3e}')
    rtol = 1e-10 if dtype == torch.float64 else 1e-4
    for label, a, b in (('dtau', tri[2], fast[2]), ('dvth', tri[3], fast[3])):
        a, b = a.double().item(), b.double().item()
        if abs(a - b) > rtol * max(1.0, abs(b)):
            bad.append(f'{name}: {label} {a:.9g} vs torch path {b:.9g}')
    again = _grads(lif_triton.lif, x, g, tau, vth, group, dim)
    if not (torch.equal(again[2], tri[2]) and torch.equal(again[3], tri[3])):
        bad.append(f'{name}: parameter gradients are not deterministic')
    if dtype == torch.float64:  # the CPU oracle
        ref = _grads(lif_reference, x.cpu(), g.cpu(), tau.cpu(), vth.cpu(), group, dim)
        for label, a, b in zip(('out', 'dx', 'dtau', 'dvth'), tri, ref):
            err = (a.cpu() - b).abs().max().item()
            if err > 1e-10:
                bad.append(f'{name}: {label} differs from lif_reference by {err:.3e}')
    return bad


def run_checks(args) -> int:
    rng = random.Random(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    shapes = [(1, 1, 1, 1), (1, 2, 13, 11), (2, 3, 5, 9), (1, 4, 200, 3), (1, 3, 7, 333)]
    shapes += [(rng.randint(1, 3), rng.randint(1, 9), rng.randint(1, 70), rng.randint(1, 70))
               for _ in range(args.random_shapes)]
    if args.interpret_cpu:  # the interpreter is slow: a few small shapes
        shapes = shapes[:3]
    failures, cases, failed = [], 0, 0
    for dtype in (DTYPES[d] for d in args.dtypes):
        for shape in shapes:
            for group in GROUPS:
                for dim in (2, 3):
                    bad = check_case(shape, dtype, group, dim, gen, args.device)
                    failures += bad
                    cases, failed = cases + 1, failed + bool(bad)
    for line in failures[:30]:
        print('FAIL', line)
    print(f'correctness: {cases - failed}/{cases} configurations pass')
    return failed


def cuda_time(fn: Callable[[], None], iters: int, warmup: int = 5) -> float:
    """Median milliseconds of fn, by CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def run_timing(args) -> None:
    shape = tuple(int(v) for v in args.shape.split('x'))
    print(f'\ntiming at {"x".join(map(str, shape))}, group 4, median of {args.iters} '
          f'(GB/s = minimum traffic / time)')
    print(f'{"dtype":<6}{"op":<34}{"along":>6}{"ms":>10}{"GB/s":>9}')
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        x = torch.randn(shape, device='cuda', dtype=dtype)
        g = torch.randn_like(x)
        tau = torch.tensor([0.25], device='cuda', requires_grad=True)
        vth = torch.tensor([0.25], device='cuda', requires_grad=True)
        nbytes = x.numel() * x.element_size()
        out = torch.empty_like(x)
        ms = cuda_time(lambda: out.copy_(x), args.iters)
        print(f'{dname:<6}{"copy (device to device)":<34}{"-":>6}{ms:10.3f}{2 * nbytes / ms / 1e6:9.1f}')
        impls = [('triton', lif_triton.lif), ('torch fast path', _LIFFunction.apply)]
        if not args.skip_reference:
            impls.append(('reference (unfused)', lif_reference))
        for dim in (2, 3):
            for name, fn in impls:
                def fwd(fn=fn, dim=dim):
                    with torch.no_grad():
                        fn(x, tau, vth, 4, dim)

                def train(fn=fn, dim=dim):
                    xi = x.detach().requires_grad_(True)
                    fn(xi, tau, vth, 4, dim).backward(g)
                along = 'H' if dim == 2 else 'W'
                ms = cuda_time(fwd, args.iters)
                print(f'{dname:<6}{name + " fwd":<34}{along:>6}{ms:10.3f}{2 * nbytes / ms / 1e6:9.1f}')
                ms = cuda_time(train, args.iters)
                print(f'{dname:<6}{name + " fwd+bwd":<34}{along:>6}{ms:10.3f}'
                      f'{5 * nbytes / ms / 1e6:9.1f}')


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--dtypes', nargs='+', default=['fp32', 'fp16', 'bf16', 'fp64'],
                   choices=list(DTYPES))
    p.add_argument('--random-shapes', type=int, default=6, help='extra random shapes')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--shape', default='2x96x200x336', help='NxCxHxW for timing')
    p.add_argument('--iters', type=int, default=30)
    p.add_argument('--skip-reference', action='store_true', help='do not time the unfused reference')
    p.add_argument('--no-timing', action='store_true')
    p.add_argument('--interpret-cpu', action='store_true',
                   help='self-test of this script without a GPU: run the checks on CPU '
                        'tensors under TRITON_INTERPRET=1 (no timing)')
    args = p.parse_args(argv)
    args.device = 'cuda'
    if args.interpret_cpu:
        os.environ['TRITON_INTERPRET'] = '1'
        args.device, args.no_timing = 'cpu', True
        print('CPU self-test under the Triton interpreter (bfloat16 rounds differently there)')
        return 1 if run_checks(args) else 0
    if not torch.cuda.is_available():
        print('no CUDA device: nothing to check')
        return 2
    probe = torch.zeros(1, 1, 1, 1, device='cuda')
    if not lif_triton.usable(probe):
        print('lif_triton.usable() is False (triton missing or MMSNNMLP_DISABLE_TRITON='
              f'{os.environ.get("MMSNNMLP_DISABLE_TRITON")!r})')
        return 2
    print(f'{torch.cuda.get_device_name()}, torch {torch.__version__}, '
          f'triton {lif_triton.triton.__version__}')
    failures = run_checks(args)
    if not args.no_timing:
        run_timing(args)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
