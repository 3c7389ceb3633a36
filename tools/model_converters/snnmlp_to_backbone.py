"""Convert a released SNN-MLP ImageNet checkpoint to a backbone-format file.

Reads the file safely (no arbitrary unpickling), keeps the backbone weights
(drops ``head.*`` and the final ``norm.*``), checks that they fit an SNNMLP of
the detected variant, and writes ``{'state_dict': ..., 'meta': ...}``
atomically. An existing output is kept unless ``--force``.

Example:
    python tools/model_converters/snnmlp_to_backbone.py snnmlp_tiny_81.88.pt snnmlp_tiny_backbone.pth
"""
import argparse
import os.path as osp
import sys

import torch

from mmsnnmlp.checkpoint import (CheckpointError, describe_arch, extract_state_dict, format_arch,
                                 load_backbone_weights, safe_load, to_backbone_state_dict)
from mmsnnmlp.models import SNNMLP
from mmsnnmlp.fileio import atomic_open


def detect_arch(state):
    """An SNNMLP arch dict read off the weights (embed dims and blocks per stage)."""
    arch = describe_arch(state)
    if arch['embed_dims'] is None:
        raise CheckpointError('it has no "patch_embed.proj.weight", so its architecture is '
                              'unknown')
    return dict(embed_dims=arch['embed_dims'], depths=arch['depths'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='released checkpoint (path or URL)')
    parser.add_argument('dst', help='output .pth')
    parser.add_argument('--force', action='store_true', help='overwrite an existing output')
    args = parser.parse_args(argv)
    if osp.exists(args.dst) and not args.force:
        sys.exit(f'{args.dst} exists; pass --force to overwrite it')
    try:
        state = to_backbone_state_dict(extract_state_dict(safe_load(args.src), args.src))
        arch = detect_arch(state)
        model = SNNMLP(arch=arch, drop_path_rate=0.0)
        load_backbone_weights(model, args.src)  # validates every key and shape
    except (FileNotFoundError, CheckpointError, ValueError) as err:
        sys.exit(f'Cannot convert {args.src}: {err}')
    out = {k: v for k, v in model.state_dict().items() if k in state}
    with atomic_open(args.dst, 'wb', overwrite=args.force) as f:
        torch.save({'state_dict': out, 'meta': {'source': osp.basename(args.src),
                                                'arch': format_arch(arch)}}, f)
    print(f'wrote {len(out)} tensors ({format_arch(arch)}) to {args.dst}')


if __name__ == '__main__':
    main()
