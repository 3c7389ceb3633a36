"""ImageNet-style evaluation of a classifier: labels from folders, top-k, speed.

Class indices (what each image's target is):

* a 1000-class classifier is an ImageNet-1k one: a folder named after an
  ImageNet synset gets that synset's index among the 1000 sorted synsets
  (the standard label order), so any subset of the val folders can be
  scored; top-1/top-5 still rank all 1000 logits (restricting them to the
  classes present would score an easier, N-way task). Folders with other
  names are accepted only when there are exactly 1000 (sorted order).
* an N-class classifier (N != 1000) wants exactly N folders; sorted folder
  names map to 0..N-1, as ImageFolder training assigns them.
"""
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..datasets import DataError
from .benchmark import autocast, sync

IMAGENET_NUM_CLASSES = 1000
IMAGE_EXTENSIONS = ('.jpeg', '.jpg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def imagenet_synsets() -> List[str]:
    """The 1000 ImageNet-1k synsets in label order (sorted; timm ships the list)."""
    from timm.data import ImageNetInfo
    return list(ImageNetInfo().label_names())


def scan_image_folder(root: str) -> Dict[str, List[str]]:
    """{class folder: sorted image paths} of an ImageFolder-layout directory."""
    if not osp.isdir(root):
        raise DataError(f'Dataset folder not found: {root}')
    folders = sorted(e.name for e in os.scandir(root) if e.is_dir())
    if not folders:
        loose = [n for n in os.listdir(root) if n.lower().endswith(IMAGE_EXTENSIONS)]
        hint = (f' It holds {len(loose)} loose images: the ImageNet val set must first be '
                'sorted into one folder per synset.' if loose else '')
        raise DataError(f'No class folders in {root}; expected ImageFolder layout '
                        f'<root>/<class>/<image>.{hint}')
    samples = {}
    for folder in folders:
        path = osp.join(root, folder)
        samples[folder] = sorted(osp.join(path, n) for n in os.listdir(path)
                                 if n.lower().endswith(IMAGE_EXTENSIONS))
    empty = [f for f, paths in samples.items() if not paths]
    if empty:
        raise DataError(f'{len(empty)} class folder(s) in {root} hold no images '
                        f'({", ".join(empty[:5])}); remove them or add their images')
    return samples


def class_indices(folders: Sequence[str], num_classes: int) -> Tuple[Dict[str, int], str]:
    """(folder -> class index, how it was decided), by the rules of this module's doc."""
    folders = sorted(folders)
    if num_classes == IMAGENET_NUM_CLASSES:
        synset_index = {s: i for i, s in enumerate(imagenet_synsets())}
        unknown = [f for f in folders if f not in synset_index]
        if not unknown:
            part = '' if len(folders) == num_classes else f', {len(folders)} of them'
            return {f: synset_index[f] for f in folders}, f'ImageNet-1k synset order{part}'
        if len(folders) != num_classes:
            raise DataError(
                f'A 1000-class (ImageNet) classifier needs folders named by ImageNet synsets to '
                f'score a subset, but {len(unknown)} of {len(folders)} are not synsets '
                f'(e.g. {unknown[0]!r}); pass --num-classes only for a classifier trained on '
                'these folders')
    elif len(folders) != num_classes:
        raise DataError(f'The classifier has {num_classes} classes but the data has '
                        f'{len(folders)} class folders; with a head other than ImageNet-1k\'s, '
                        'folders and classes must match one to one')
    return {f: i for i, f in enumerate(folders)}, 'sorted folder names'


class LabelledImages(Dataset):
    """(image path, class index) pairs through a transform; a bad image raises."""

    def __init__(self, samples: Sequence[Tuple[str, int]], transform=None):
        self.samples, self.transform = list(samples), transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        try:
            with Image.open(path) as image:
                image = image.convert('RGB')
        except OSError as err:
            raise DataError(f'Cannot read image {path}: {err}') from err
        return (self.transform(image) if self.transform else image), target


def build_eval_loader(root: str, num_classes: int, transform, batch_size: int = 64,
                      workers: int = 4, pin_memory: bool = False
                      ) -> Tuple[DataLoader, str]:
    """A fixed-order loader over ``root`` and the description of its class indices."""
    folders = scan_image_folder(root)
    index, how = class_indices(list(folders), num_classes)
    samples = [(path, index[f]) for f in sorted(folders) for path in folders[f]]
    loader = DataLoader(LabelledImages(samples, transform), batch_size=batch_size,
                        shuffle=False, num_workers=workers, pin_memory=pin_memory)
    return loader, f'{len(samples)} images in {len(folders)} class folders, {how}'


def amp_dtype(device: torch.device) -> torch.dtype:
    """The mixed precision of ``--amp``: float16 on CUDA, bfloat16 elsewhere."""
    return torch.float16 if device.type == 'cuda' else torch.bfloat16


@torch.no_grad()
def evaluate(model: nn.Module, loader, device, amp: bool = False, topk: Sequence[int] = (1, 5),
             progress: bool = True) -> Dict[str, Optional[float]]:
    """Top-k accuracy (%) of ``model`` over ``loader``, and its speed.

    ``top{k}`` is None when the model has fewer than k + 1 classes (it would
    be 100 by construction). Speed: ``images_per_s`` times the forward passes
    alone (synchronised), leaving out the first batch (lazy initialisation,
    kernel compilation) when there are more; ``end_to_end_images_per_s`` is
    the whole loop including data loading."""
    device = torch.device(device)
    model.eval()
    correct = {k: 0 for k in topk}
    seen = timed_images = 0
    timed_s = first_s = 0.0
    start = time.perf_counter()
    for step, (images, targets) in enumerate(tqdm(loader, desc='eval', unit='batch',
                                                  disable=not progress, dynamic_ncols=True)):
        images = images.to(device, non_blocking=True)
        sync(device)
        t0 = time.perf_counter()
        with autocast(device, amp_dtype(device) if amp else torch.float32):
            logits = model(images)
        sync(device)
        if step == 0:
            first_s = time.perf_counter() - t0
        else:
            timed_s += time.perf_counter() - t0
            timed_images += len(images)
        if logits.dim() != 2:
            raise ValueError(f'Expected logits of shape (N, classes), got {tuple(logits.shape)}')
        num_classes = logits.shape[1]
        if len(targets) and int(targets.max()) >= num_classes:
            raise ValueError(f'target {int(targets.max())} out of range for a model of '
                             f'{num_classes} classes')
        ranked = logits.float().topk(min(max(topk), num_classes), dim=1).indices.cpu()
        hits = ranked == targets[:, None]
        for k in topk:
            correct[k] += int(hits[:, :k].any(1).sum())
        seen += len(targets)
    wall_s = time.perf_counter() - start
    if seen == 0:
        raise DataError('No images to evaluate')
    if not timed_images:  # one batch: all we have
        timed_s, timed_images = first_s, seen
    result = {f'top{k}': (100.0 * correct[k] / seen if k < num_classes else None) for k in topk}
    result.update(images=seen, num_classes=num_classes,
                  images_per_s=timed_images / timed_s if timed_s > 0 else None,
                  end_to_end_images_per_s=seen / wall_s)
    return result
