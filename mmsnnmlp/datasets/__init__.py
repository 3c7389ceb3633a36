"""Pre-flight checks of a config's datasets (COCO detection, mmseg segmentation)."""
from .checks import check_data
from .common import DataError, DataWarning

__all__ = ['check_data', 'DataError', 'DataWarning']
