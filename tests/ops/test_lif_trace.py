"""lif_trace: the LIF output, membrane potentials and spikes, against loops of their own."""
import numpy as np
import pytest
import torch

from mmsnnmlp.ops import lif_reference, lif_trace
from helpers.lif_scalar_reference import scalar_lif


def _potentials(x, tau, vth, group, dim):
    """u at every processed position, float64, a loop apart from the library's."""
    xs = np.moveaxis(np.asarray(x, np.float64), dim, -1)
    u_all = xs.copy()  # the tail: u is the input
    length = xs.shape[-1]
    size = length if group is None else group
    for idx in np.ndindex(*xs.shape[:-1]):
        for start in range(0, length - size + 1, size):
            carried = 0.0
            for j in range(start, start + size):
                u = tau * carried + xs[idx + (j,)]
                u_all[idx + (j,)] = u
                carried = 0.0 if u > vth else u
    return np.moveaxis(u_all, -1, dim)


@pytest.mark.parametrize('shape, group, dim', [((2, 3, 11, 5), 4, 2), ((1, 2, 3, 9), 2, 3),
                                               ((1, 2, 6, 7), None, 3), ((1, 1, 3, 5), 7, 2)])
def test_lif_trace(shape, group, dim):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    tau, vth = 0.6, 0.05
    out, u, fired = lif_trace(x, tau, vth, group, dim)
    torch.testing.assert_close(out, lif_reference(x, tau, vth, group, dim), rtol=0, atol=0)
    torch.testing.assert_close(out.numpy(), scalar_lif(x.numpy(), tau, vth, group, dim))
    torch.testing.assert_close(u.numpy(), _potentials(x.numpy(), tau, vth, group, dim))
    length = shape[dim]
    size = length if group is None else group
    processed = torch.zeros(length, dtype=torch.bool)
    processed[:length // size * size] = True
    mask = processed.view([-1 if d == dim else 1 for d in range(4)]).expand(shape)
    assert torch.equal(fired, (u > vth) & mask)
    assert fired.dtype == torch.bool
