"""Framework-neutral operators of SNN-MLP."""
from .dispatch import IMPLS, set_impl
from .lif import LIF, lif, lif_reference, lif_trace
from .norm_act import NormAct, norm_act

__all__ = ['IMPLS', 'LIF', 'NormAct', 'lif', 'lif_reference', 'lif_trace', 'norm_act',
           'set_impl']
