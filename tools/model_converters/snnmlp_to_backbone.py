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

from mmsnnmlp.models import SNNMLP, CheckpointError, load_backbone_weights
from mmsnnmlp.models.checkpoint import describe_arch, extract_state_dict, safe_load, \
    to_backbone_state_dict
from mmsnnmlp.utils import atomic_open


def detect_arch(state):
    """An arch dict read off the weights (embed dims and blocks per stage)."""
    text = describe_arch(state)  # 'embed_dims=96, depths=(2, 2, 6, 2)'
    dims = int(text.split(',')[0].split('=')[1])
    depths = tuple(int(d) for d in text.split('(')[1].rstrip(')').split(',') if d.strip())
    return dict(embed_dims=dims, depths=depths)


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
        model = SNNMLP(arch=detect_arch(state), drop_path_rate=0.0)
        load_backbone_weights(model, args.src)  # validates every key and shape
    except (FileNotFoundError, CheckpointError, ValueError) as err:
        sys.exit(f'Cannot convert {args.src}: {err}')
    out = {k: v for k, v in model.state_dict().items() if k in state}
    with atomic_open(args.dst, 'wb', overwrite=args.force) as f:
        torch.save({'state_dict': out, 'meta': {'source': osp.basename(args.src),
                                                'arch': describe_arch(state)}}, f)
    print(f'wrote {len(out)} tensors ({describe_arch(state)}) to {args.dst}')


if __name__ == '__main__':
    main()
