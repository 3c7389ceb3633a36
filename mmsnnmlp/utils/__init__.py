"""Helpers shared by the tools: config loading, data checks, atomic output."""
from .config import library_of, load_config
from .data_check import DataError, DataWarning, check_data
from .io import atomic_open, atomic_write_json

__all__ = ['load_config', 'library_of', 'check_data', 'DataError', 'DataWarning', 'atomic_open',
           'atomic_write_json']
