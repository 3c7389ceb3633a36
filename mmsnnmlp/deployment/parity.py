"""How close a runtime's outputs are to PyTorch's.

LIF resets are discontinuous: a potential that lands on the threshold in one
runtime and just below it in another changes the output there and the
potential carried to the next step. In float32, some elements therefore
differ by much more than rounding. Parity is stated per output as the
largest error relative to the output's scale and the share of elements whose
error exceeds ``rel_tol`` of that scale; in float64 every element must agree.
"""
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

# float32 criterion: at most this share of elements off by more than REL_TOL x scale
REL_TOL = 1e-4
MAX_SHARE = 1e-3


@dataclass
class Parity:
    name: str
    shape: tuple
    scale: float         # max |reference|
    max_abs: float       # max |output - reference|
    share_off: float     # share of elements with |error| > rel_tol * scale
    rel_tol: float

    @property
    def max_rel(self) -> float:
        return self.max_abs / self.scale if self.scale > 0 else self.max_abs

    def row(self) -> str:
        return (f'{self.name:<12} {str(self.shape):<22} scale {self.scale:10.4g}  max abs '
                f'{self.max_abs:9.3g}  max rel {self.max_rel:9.3g}  share > '
                f'{self.rel_tol:g}*scale {100 * self.share_off:8.4f}%')


def compare(outputs: Sequence[np.ndarray], references: Sequence[np.ndarray],
            names: Sequence[str] = None, rel_tol: float = REL_TOL) -> List[Parity]:
    """One :class:`Parity` per output (same order as ``references``)."""
    if len(outputs) != len(references):
        raise ValueError(f'{len(outputs)} outputs for {len(references)} references')
    names = names or [f'out{i}' for i in range(len(references))]
    result = []
    for name, out, ref in zip(names, outputs, references):
        out, ref = np.asarray(out), np.asarray(ref)
        if out.shape != ref.shape:
            raise ValueError(f'{name}: shape {out.shape} differs from PyTorch {ref.shape}')
        ref64, err = ref.astype(np.float64), np.abs(out.astype(np.float64) - ref)
        scale = float(np.abs(ref64).max()) if ref.size else 0.0
        result.append(Parity(name, tuple(ref.shape), scale, float(err.max()) if ref.size else 0.0,
                             float((err > rel_tol * scale).mean()) if ref.size else 0.0,
                             rel_tol))
    return result


def report(parities: Sequence[Parity], title: str = '') -> str:
    lines = [title] if title else []
    return '\n'.join(lines + [p.row() for p in parities])


def within_float32_bound(parities: Sequence[Parity], max_share: float = MAX_SHARE) -> bool:
    """The float32 criterion: every output's share below ``max_share``."""
    return all(p.share_off < max_share for p in parities)
