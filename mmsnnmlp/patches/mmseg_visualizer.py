"""Patch ``mmseg_visualizer``: mmseg's ``SegLocalVisualizer`` draws on a
contiguous copy of the image it is given.

mmseg 1.2's own ``tools/analysis_tools/browse_dataset.py`` hands the
visualizer a non-contiguous view (``permute`` then a channel flip), into which
OpenCV cannot draw the class labels (``cv2.error ... Layout of the output
array img is incompatible with cv::Mat``), with every OpenCV version. The
copy costs one image per drawing. mmseg is patched when it is imported (never
imported here).
"""
import functools

import numpy as np

from ._after_import import after_import

MODULE = 'mmseg.visualization.local_visualizer'


def install() -> None:
    """Patch the visualizer now, or when mmseg's visualization is first imported."""
    after_import(MODULE, _patch)


def _patch() -> None:
    import sys
    visualizer = sys.modules[MODULE].SegLocalVisualizer
    draw = visualizer._draw_sem_seg
    if getattr(draw, 'mmsnnmlp_contiguous', False):
        return

    @functools.wraps(draw)
    def draw_on_contiguous(self, image, *args, **kwargs):
        return draw(self, np.ascontiguousarray(image), *args, **kwargs)

    draw_on_contiguous.mmsnnmlp_contiguous = True
    visualizer._draw_sem_seg = draw_on_contiguous
