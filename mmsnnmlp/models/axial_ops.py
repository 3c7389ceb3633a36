"""Axial layers of the paper's ablation variants (Tables 5 and 8).

* :class:`AxialShift`: AS-MLP's axial shift (Lian et al., ICLR 2022), the
  token mixer SNN-MLP's LIF replaces, written from that paper's description.
* :class:`AxialLIF`: LIF along H and along W of one input as a single
  elementwise-shaped layer, for LIF neurons placed outside the token mixer.

Neither has parameters of its own beyond the LIF neurons' tau and Vth.
"""
import math
from typing import Callable, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def axial_shift(x: Tensor, shift_size: int, dim: int, dilation: int = 1) -> Tensor:
    """Shift channel groups of an NCHW tensor along H (``dim=2``) or W (``dim=3``).

    The channels are cut into groups of ``ceil(C / shift_size)`` (the last may
    be smaller, or groups may run out when C < shift_size); group g moves by
    ``(g - shift_size // 2) * dilation`` positions along ``dim`` (content at
    position p lands at p + offset), and zeros fill what is shifted in."""
    if dim not in (2, 3):
        raise ValueError(f'axial_shift runs along H (dim=2) or W (dim=3), got dim={dim}')
    centre = shift_size // 2
    reach = centre * dilation
    if reach == 0:
        return x
    length = x.shape[dim]
    padded = F.pad(x, [reach, reach] if dim == 3 else [0, 0, reach, reach])
    chunk = math.ceil(x.shape[1] / shift_size)
    parts: List[Tensor] = []  # a loop, not a comprehension: TorchScript
    for g, part in enumerate(padded.split(chunk, 1)):
        parts.append(part.narrow(dim, reach - (g - centre) * dilation, length))
    return torch.cat(parts, 1)


torch.fx.wrap('axial_shift')  # a leaf of torch.fx graphs: it loops over the channel groups


class AxialShift(nn.Module):
    """:func:`axial_shift` as a module (no parameters).

    Args:
        shift_size (int): number of channel groups, odd; group g shifts by
            ``g - shift_size // 2`` steps. AS-MLP uses 5.
        dim (int): 2 to shift along H, 3 along W.
        dilation (int): positions per step. AS-MLP uses 1.
    """

    def __init__(self, shift_size: int, dim: int, dilation: int = 1):
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f'AxialShift dim must be 2 (H) or 3 (W), got {dim}')
        self.shift_size, self.dim, self.dilation = shift_size, dim, dilation

    def forward(self, x: Tensor) -> Tensor:
        return axial_shift(x, self.shift_size, self.dim, self.dilation)

    def extra_repr(self) -> str:
        axis = 'H' if self.dim == 2 else 'W'
        return f'along={axis}, shift_size={self.shift_size}, dilation={self.dilation}'


class AxialLIF(nn.Module):
    """LIF along H (``lif1``) and along W (``lif2``) of the same input, averaged.

    Shaped like an elementwise activation (N, C, H, W in and out), so it can
    follow a stage or stand in for a GELU. Averaging keeps the scale of one
    LIF's output (which is ``x`` wherever the neuron fires at once).

    Args:
        neuron (callable): ``neuron(dim)`` builds the LIF neuron along ``dim``
            (2: H, 3: W), e.g. :func:`mmsnnmlp.models.layers.lif_neuron` with a spec.
    """

    def __init__(self, neuron: Callable[[int], nn.Module]):
        super().__init__()
        self.lif1 = neuron(2)
        self.lif2 = neuron(3)

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * (self.lif1(x) + self.lif2(x))
