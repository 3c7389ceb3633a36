"""An independent scalar-loop LIF in float64, written from the recurrence
in the docstring of mmsnnmlp/ops/lif.py.

Forward-mode derivative for tau (du_j/dtau recurrence), a reverse scan for x,
and a plain count for Vth: deliberately different from the library's code.
"""
import numpy as np


def _lines(shape, dim):
    """Yield index tuples selecting one 1-D line along ``dim`` of an NCHW array."""
    n, c, h, w = shape
    if dim == 2:
        for a in range(n):
            for b in range(c):
                for col in range(w):
                    yield (a, b, slice(None), col)
    else:
        for a in range(n):
            for b in range(c):
                for row in range(h):
                    yield (a, b, row, slice(None))


def scalar_lif(x, tau, vth, group, dim, grad_out=None):
    """Returns out, and if grad_out is given also (dx, dtau, dvth)."""
    x = np.asarray(x, dtype=np.float64)
    out = x.copy()
    dx = None if grad_out is None else np.asarray(grad_out, dtype=np.float64).copy()
    dtau = 0.0
    dvth = 0.0
    length = x.shape[dim]
    size = length if group is None else group
    n_groups = length // size
    for idx in _lines(x.shape, dim):
        line = x[idx]
        g_line = None if grad_out is None else np.asarray(grad_out, np.float64)[idx]
        res = out[idx]
        gres = None if dx is None else dx[idx]
        for k in range(n_groups):
            base = k * size
            o = 0.0
            du_dtau = 0.0        # du_j / dtau
            prev_fired = True    # so that do_0/dtau = 0
            prev_du = 0.0
            fired, us = [], []
            for j in range(size):
                u = tau * o + line[base + j]
                # du_j/dtau = o_j + tau * (1 - f_{j-1}) * du_{j-1}/dtau
                du_dtau = o + (0.0 if prev_fired else tau * prev_du)
                f = u > vth
                res[base + j] = u if f else vth
                if g_line is not None:
                    g = g_line[base + j]
                    if f:
                        dtau += g * du_dtau
                    else:
                        dvth += g
                fired.append(f)
                us.append(u)
                o = 0.0 if f else u
                prev_fired, prev_du = f, du_dtau
            if gres is not None:
                adj = 0.0
                for j in reversed(range(size)):
                    g = g_line[base + j]
                    adj = (g if fired[j] else 0.0) + (0.0 if fired[j] else tau * adj)
                    gres[base + j] = adj
    if grad_out is None:
        return out
    return out, dx, dtau, dvth
