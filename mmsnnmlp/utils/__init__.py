"""Helpers shared by the tools: config loading, data checks, safe resume."""
from .config import load_config, library_of
from .data_check import DataError, DataWarning, check_data
from .io import atomic_open, atomic_write_json, use_atomic_local_writes
from .serialization import allow_mmengine_checkpoints

__all__ = ['load_config', 'library_of', 'check_data', 'DataError', 'DataWarning',
           'allow_mmengine_checkpoints', 'atomic_open', 'atomic_write_json',
           'use_atomic_local_writes']
