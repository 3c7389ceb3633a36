"""Framework-neutral operators of SNN-MLP."""
from . import selfcheck  # noqa: F401  (installs the Triton self-check of impl='auto')
from .dispatch import IMPLS
from .lif import lif, lif_reference, lif_trace
from .modules import LIF, NormAct, set_impl
from .norm_act import norm_act

__all__ = ['IMPLS', 'LIF', 'NormAct', 'lif', 'lif_reference', 'lif_trace', 'norm_act',
           'set_impl']
