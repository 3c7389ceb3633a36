"""Framework-neutral operators of SNN-MLP."""
from .lif import LIF, lif, lif_reference

__all__ = ['LIF', 'lif', 'lif_reference']
