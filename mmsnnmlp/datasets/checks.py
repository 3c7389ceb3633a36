"""Pre-flight checks of a config's datasets, with errors that say what and where.

mmdet/mmseg only notice a missing folder or image when a dataloader worker
trips over it, deep inside mmcv, and they drop some bad annotations without a
word. We look first, on every dataset:

* COCO files: JSON structure (each malformed entry named by index and key),
  references (category and image ids that the file does not define, duplicate
  ids), the config's classes against the file's categories, and the
  annotations mmdet would skip (boxes under 1 px, zero area, outside the
  image): a few are a :class:`DataWarning`, most of a file an error;
* every image an annotation names and every label map an image needs;
* label maps hold one channel and have their image's size (read from the
  file headers, so it is cheap).

With ``full=True`` (by default for datasets of up to ``FULL_CHECK_LIMIT``
images) also that each image decodes and each label map holds only known
classes.
"""
import os.path as osp
import warnings
from typing import Dict, Iterable, Optional

from .coco import check_coco
from .common import DataError, DataWarning
from .seg import check_seg

PREPARE_HINT = {
    'mmdet': ('COCO 2017 is expected as <data_root>/annotations/instances_{train,val}2017.json '
              'and <data_root>/{train,val}2017/*.jpg (download from cocodataset.org, or make '
              'toy data: python tools/misc/make_toy_data.py --out data/toy). Point the config '
              'at it with --cfg-options or a symlink: ln -s /path/to/coco data/coco'),
    'mmseg': ('ADE20K is expected as <data_root>/images/{training,validation}/*.jpg and '
              '<data_root>/annotations/{training,validation}/*.png (ADEChallengeData2016.zip '
              'from the MIT scene parsing benchmark, or toy data: python '
              'tools/misc/make_toy_data.py --out data/toy). Link it: '
              'ln -s /path/to/ADEChallengeData2016 data/ade/ADEChallengeData2016'),
}


def _datasets(cfg: Dict) -> Iterable[Dict]:
    """Leaf dataset configs, looking through wrappers (Repeat/Concat/ClassBalanced)."""
    if 'datasets' in cfg:
        for sub in cfg['datasets']:
            yield from _datasets(sub)
    elif 'dataset' in cfg:
        yield from _datasets(cfg['dataset'])
    else:
        yield cfg


def check_data(cfg, dataloader_keys: Iterable[str], full: Optional[bool] = None) -> None:
    """Raise :class:`DataError` for the problems in these dataloaders' data;
    issue a :class:`DataWarning` for the ones training survives.

    ``full``: decode images and read label maps too (None: for small datasets)."""
    library = cfg.get('default_scope')
    for key in dataloader_keys:
        loader = cfg.get(key)
        if not loader:
            continue
        for ds in _datasets(loader['dataset']):
            root = ds.get('data_root')
            if root and not osp.isdir(root):
                raise DataError(f'{key}: data root not found: {root}\n'
                                f'{PREPARE_HINT.get(library, "")}')
            warned = []
            try:
                if library == 'mmdet' and ds.get('ann_file'):
                    warned = check_coco(ds, full, training=key.startswith('train'))
                elif library == 'mmseg':
                    check_seg(ds, _num_classes(cfg, ds), full, _ignore_index(cfg))
            except DataError as err:
                raise DataError(f'{key}: {err}\n{PREPARE_HINT.get(library, "")}') from None
            for message in warned:
                warnings.warn(f'{key}: {message}', DataWarning, stacklevel=2)


def _num_classes(cfg, ds: Dict) -> int:
    classes = (ds.get('metainfo') or {}).get('classes')
    if classes:
        return len(classes)
    return cfg.model.decode_head.num_classes


def _ignore_index(cfg) -> int:
    """The label the decode head's loss skips (mmseg's default: 255)."""
    head = (cfg.get('model') or {}).get('decode_head') or {}
    if isinstance(head, (list, tuple)):  # cascade heads: the last one predicts
        head = head[-1] if head else {}
    return head.get('ignore_index', 255)
