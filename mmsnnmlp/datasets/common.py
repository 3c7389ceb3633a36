"""What the dataset checks share: their error and warning, and message helpers."""
import os.path as osp
from typing import List, Optional, Tuple

# EXIF orientations that swap width and height; mmcv's image loading
# (cv2 and pillow alike) applies them, label maps are read unrotated.
_TRANSPOSING = {5, 6, 7, 8}

# Decode every image (and read every label map) when a dataset has at most
# this many images; bigger ones get the structure and header checks only.
FULL_CHECK_LIMIT = 2000


class DataError(RuntimeError):
    """A dataset problem found before training or testing starts."""


class DataWarning(UserWarning):
    """A dataset oddity that training survives, which the user should know about."""


def wants_full_check(full: Optional[bool], num_images: int) -> bool:
    """``full`` as given, else whether the dataset is small enough to decode."""
    return num_images <= FULL_CHECK_LIMIT if full is None else full


def join_root(root: str, path: str) -> str:
    return path if not root or osp.isabs(path) else osp.join(root, path)


def short(items: List[str], limit: int = 5, sep: str = ', ') -> str:
    more = f' ... (+{len(items) - limit} more)' if len(items) > limit else ''
    return sep.join(items[:limit]) + more


def brief(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def decodes(path: str) -> bool:
    import cv2  # here, not at the top: `import mmsnnmlp` must not load cv2
    return cv2.imread(path, cv2.IMREAD_UNCHANGED) is not None


def read_header(path: str, image: bool) -> Tuple[str, int, Tuple[int, int]]:
    """(PIL mode, channels, (width, height) as the pipeline will see it), read
    from the header only. ``image``: apply the EXIF orientation, as mmcv does
    for images (not for label maps)."""
    from PIL import Image  # here, not at the top: `import mmsnnmlp` must not load PIL
    with Image.open(path) as im:
        width, height = im.size
        # JPEG EXIF is parsed on open; other formats would need a decode
        if (image and im.format == 'JPEG' and 'exif' in im.info
                and im.getexif().get(0x0112) in _TRANSPOSING):
            width, height = height, width
        return im.mode, len(im.getbands()), (width, height)
