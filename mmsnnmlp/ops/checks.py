"""Correctness checks of the Triton kernels, as functions that return results.

Each check runs the Triton kernels (``impl='triton'``) on ``device`` and
compares values and gradients with a trusted path, and runs them twice to
check that gradients are bitwise repeatable (the kernels use no atomics):

* :func:`check_lif`: the LIF kernels against the PyTorch path on the same
  device (the same float32 operations without FMA: bitwise equal output and
  dL/dx), float64 against the reference on CPU;
* :func:`check_norm_act`: the norm_act kernels (+ GELU) against float64
  ``F.group_norm`` on the same inputs;
* :func:`check_compile`: any model containing the ops under
  ``torch.compile(fullgraph=True)`` against eager.

They run on CUDA tensors, or on CPU tensors under ``TRITON_INTERPRET=1``
(Triton's interpreter; keep the shapes small there). Nothing is printed:
``tools/analysis_tools/gpu_report.py`` tabulates the results, and the tests
assert on them. The default shapes are small probes, cheap on any device.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .lif import lif
from .norm_act import norm_act

Shape = Sequence[int]
# A 1x1 map, and odd sizes with a tail along H (7 = 4 + 3) and W
PROBE_SHAPES = ((1, 3, 1, 1), (2, 5, 7, 9))
# Every group kind: one-row groups, the model's default, one global group
GROUPS = (1, 4, None)
DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
# The norm tiles' tails (HW 1025 = 1024 + 1, C 5 = 4 + 1), a stage-4 map and
# the stage-1 map of a detection input. LIF has no tiles: its kernels meet
# every case on the first four.
NORM_ACT_SHAPES = ((1, 3, 1, 1), (2, 5, 7, 9), (1, 5, 1025, 1), (3, 7, 33, 65),
                   (2, 768, 25, 42), (2, 96, 300, 500))
LIF_SHAPES = NORM_ACT_SHAPES[:4]
NORM_ACT_TOL = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 1e-2,
                torch.bfloat16: 5e-2}


class CheckResult(NamedTuple):
    """One checked case; ``max_err`` is the largest error found (relative
    where the check scales it), ``ok`` whether every comparison passed."""
    kernel: str
    shape: str
    dtype: str
    case: str
    max_err: float
    ok: bool


def _shape_text(shape: Shape) -> str:
    return 'x'.join(map(str, shape))


def _dtype_text(dtype: torch.dtype) -> str:
    return str(dtype)[len('torch.'):]


def _worst(errs: Sequence[float]) -> float:
    """The largest error; NaN if any is NaN (which ``max`` may skip)."""
    return float('nan') if any(e != e for e in errs) else max(errs)


def _param_dtype(dtype: torch.dtype) -> torch.dtype:
    """Module parameters stay float32, except in float64 models."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _lif_runs(x: Tensor, g: Tensor, params: Sequence[Tensor], group: Optional[int], dim: int):
    def run(impl: str, device) -> List[Tensor]:
        """Output and the three gradients, on CPU; fresh leaves per run, so
        that no run accumulates into another's gradients. A parameter that
        autograd never reached (the reference with one-row groups) has a zero
        gradient."""
        leaves = [t.detach().to(device).clone().requires_grad_(True) for t in (x, *params)]
        out = lif(*leaves, group, dim, impl)
        out.backward(g.to(device))
        grads = [torch.zeros_like(t) if t.grad is None else t.grad for t in leaves]
        return [t.detach().cpu() for t in [out] + grads]
    return run


def check_lif(device, dtype: torch.dtype, shapes: Sequence[Shape] = PROBE_SHAPES,
              groups: Sequence[Optional[int]] = GROUPS, exact: Optional[bool] = None,
              first_seed: int = 0, tol: Optional[float] = None, repeat: bool = True
              ) -> List[CheckResult]:
    """The Triton LIF kernels, along H and W, for each shape and group.

    Against the PyTorch path on the same device, the output and dL/dx must be
    bitwise equal and dL/dtau, dL/dVth (sums in another order) within 1e-4;
    float64 is checked against the reference on CPU to 1e-9. ``exact``
    (default: on CUDA) applies the bitwise rule to bfloat16 too; the
    interpreter rounds float32 to bfloat16 toward zero, a GPU to nearest, so
    without it bfloat16 may differ by a unit in the last place. The gradients
    of two Triton runs must be bitwise equal (``repeat``). ``tol`` replaces
    these rules: every tensor within ``tol`` times its largest value (at
    least 1), for a Triton that contracts to FMA (the self-check). Case ``i``
    draws its inputs with seed ``first_seed + i``."""
    device = torch.device(device)
    exact = device.type == 'cuda' if exact is None else exact
    pdtype = _param_dtype(dtype)
    results = []
    for shape in shapes:
        for group in groups:
            for dim in (2, 3):
                gen = torch.Generator().manual_seed(first_seed + len(results))
                x = (torch.randn(shape, generator=gen) * 0.6).to(dtype)
                g = torch.randn(shape, generator=gen).to(dtype)
                params = (torch.tensor([0.3], dtype=pdtype), torch.tensor([0.1], dtype=pdtype))
                run = _lif_runs(x, g, params, group, dim)
                tri = run('triton', device)
                ref = run('reference', 'cpu') if dtype == torch.float64 else run('torch', device)
                again = run('triton', device) if repeat else tri
                errs = [(a.double() - b.double()).abs().max().item() for a, b in zip(tri, ref)]
                scale = max(1.0, ref[2].abs().item(), ref[3].abs().item())
                if tol is not None:
                    ok = all(e <= tol * max(1.0, b.abs().max().item())
                             for e, b in zip(errs, ref))
                elif dtype == torch.float64:
                    ok = _worst(errs) <= 1e-9 * scale
                elif exact or dtype != torch.bfloat16:
                    ok = errs[0] == errs[1] == 0 and _worst(errs[2:]) <= 1e-4 * scale
                else:
                    ok = _worst(errs[:2]) <= 2e-2 and _worst(errs[2:]) <= 1e-2 * scale
                repeatable = all(torch.equal(a, b) for a, b in zip(tri[1:], again[1:]))
                results.append(CheckResult('lif', _shape_text(shape), _dtype_text(dtype),
                                           f'group={group} dim={dim}', _worst(errs),
                                           bool(ok and repeatable)))
    return results


def check_norm_act(device, dtype: torch.dtype, shapes: Sequence[Shape] = PROBE_SHAPES,
                   first_seed: int = 0, tol: Optional[float] = None, repeat: bool = True
                   ) -> List[CheckResult]:
    """The Triton norm_act kernels, without and with GELU, for each shape:
    the output and the three gradients against float64 ``F.group_norm``
    (+ ``F.gelu``) on the same (rounded) inputs, relative to the largest
    value, within ``tol`` (default: :data:`NORM_ACT_TOL`); and gradients of
    two Triton runs bitwise equal (``repeat``). Case ``i`` draws its inputs
    with seed ``first_seed + i``."""
    device = torch.device(device)
    pdtype = _param_dtype(dtype)
    results = []
    for shape in shapes:
        for act in (None, 'gelu'):
            gen = torch.Generator().manual_seed(first_seed + len(results))
            x = (torch.randn(shape, generator=gen) * 1.5 + 0.3).to(device, dtype)
            g = torch.randn(shape, generator=gen).to(device, dtype)
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
            again = run(fused, x, w, b) if repeat else tri
            errs = [((a.double() - r).abs().max() / max(1.0, r.abs().max())).item()
                    for a, r in zip(tri, ref)]
            ok = _worst(errs) <= (NORM_ACT_TOL[dtype] if tol is None else tol) and all(
                torch.equal(a, b) for a, b in zip(tri[1:], again[1:]))
            results.append(CheckResult('norm_act', _shape_text(shape), _dtype_text(dtype),
                                       f'act={act}', _worst(errs), bool(ok)))
    return results


def _outputs_and_grads(model: nn.Module, run: nn.Module, x: Tensor) -> Dict[str, Tensor]:
    """Outputs and the parameters' gradients of a fixed random weighting of
    the outputs (a tensor or a sequence of tensors), by name."""
    model.zero_grad(set_to_none=True)
    outs = run(x)
    outs = [outs] if isinstance(outs, Tensor) else list(outs)
    gen = torch.Generator().manual_seed(1)
    sum((o * torch.randn(o.shape, generator=gen).to(o)).sum() for o in outs).backward()
    tensors = {f'out{i}': o.detach() for i, o in enumerate(outs)}
    tensors.update((n, p.grad.clone()) for n, p in model.named_parameters()
                   if p.grad is not None)
    return tensors


def check_compile(model: nn.Module, x: Tensor, backend: str = 'aot_eager',
                  name: Optional[str] = None, tol: float = 1e-3) -> List[CheckResult]:
    """``model`` under ``torch.compile(fullgraph=True, backend=backend)``
    against eager: outputs and every parameter's gradient, relative to the
    largest value, within ``tol``. A parameter with a gradient on one side
    only is a failure."""
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    eager = _outputs_and_grads(model, model, x)
    comp = _outputs_and_grads(model, compiled, x)
    err = _worst([((comp[k] - eager[k]).abs().max() / max(1.0, eager[k].abs().max())).item()
                  for k in eager.keys() & comp.keys()])
    name = name or f'{type(model).__name__} compiled'
    return [CheckResult(name, _shape_text(x.shape), _dtype_text(x.dtype),
                        f'fullgraph, {backend}', err, eager.keys() == comp.keys() and err <= tol)]
