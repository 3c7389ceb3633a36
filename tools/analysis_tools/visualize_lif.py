"""Look inside the LIF neurons of an SNN-MLP model on one image (cf. the paper's Figure 5).

For the chosen blocks, draws each LIF neuron layer's input x, membrane
potential u, where it fires (u > Vth) and its output, along H (``lif1``) and
along W (``lif2``), as a PNG grid; writes the firing rate of every LIF neuron
layer and every block to JSON.

Models:

* detection / segmentation: an mmdet or mmseg config and its checkpoint; the
  image goes through the library's own inference (test pipeline and data
  preprocessor), exactly as in tools/demo/image_demo.py;
* classification: a checkpoint alone (the SNN-MLP shape is read off it), or
  with ``--config`` a timm model name (``snnmlp_tiny``...) or an ImageNet
  model config (configs/ablation/imagenet); timm's evaluation transform of
  that model (resize, centre crop 224, ImageNet mean/std).

Maps: by default each panel averages over channels, so "fires" shows the
fraction of channels firing at each position (a local firing rate in [0, 1]);
``--channel K`` shows channel K alone (fires is then 0 or 1). Batch element 0.
In "fires", red marks the rows (along H) or columns (along W) after the last
full group, which the neuron passes through unprocessed.

Firing rates are defined in :mod:`mmsnnmlp.analysis.lif_recorder`.

Examples::

    python tools/analysis_tools/visualize_lif.py demo.jpg \\
        --config configs/seg/snnmlp-t_upernet_8xb2-160k_ade20k-512x512.py \\
        --checkpoint iter_160000.pth --blocks 0.0 2.3 --out-dir work_dirs/lif
    python tools/analysis_tools/visualize_lif.py demo.jpg --config snnmlp_tiny \\
        --checkpoint snnmlp_tiny_81.88.pt

Block names: ``S.B`` is block B of stage S; ``S`` alone is the LIF layer after
stage S (``lif_placement='after_stage'``). Default: the first block of every
stage.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, Sequence

import numpy as np
from torch import Tensor

from mmsnnmlp.analysis.lif_recorder import COLUMNS, Recorder, firing_rates, record
from mmsnnmlp.checkpoint import CheckpointError
from mmsnnmlp.engine.launch import exit_unless_writable

PNG_NAME, JSON_NAME = 'lif_visualization.png', 'firing_rates.json'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('image', help='image file')
    parser.add_argument('--checkpoint', required=True,
                        help='checkpoint of the detector, segmentor or classifier')
    parser.add_argument('--config', help='mmdet/mmseg config, ImageNet model config or timm '
                        'model name (snnmlp_tiny...); none: a classification checkpoint')
    parser.add_argument('--blocks', nargs='+', help='blocks to draw, as STAGE.BLOCK (e.g. 0.0 '
                        '2.3), or STAGE for the LIF after a stage; default: each stage\'s first')
    parser.add_argument('--channel', type=int, help='draw this channel instead of the mean')
    parser.add_argument('--out-dir', default='.',
                        help=f'where {PNG_NAME} and {JSON_NAME} go (default: here)')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


# --------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------
def _displayable(x: Tensor) -> np.ndarray:
    """The normalised network input as an image in [0, 1] (per-channel min-max)."""
    img = x[:3].numpy().transpose(1, 2, 0)
    low, high = img.min((0, 1)), img.max((0, 1))
    return (img - low) / np.where(high > low, high - low, 1)


def draw(recorder: Recorder, rates: Dict, chosen: Sequence[str], net_input: Tensor,
         out_file: str, title: str = '') -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(recorder.maps)
    rows = len(names) + 1
    fig = plt.figure(figsize=(3.2 * len(COLUMNS), 2.6 * rows))
    grid = fig.add_gridspec(rows, len(COLUMNS))
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(_displayable(net_input))
    ax.set_title(f'network input {tuple(net_input.shape[1:])}', fontsize=9)
    ax.axis('off')
    ax = fig.add_subplot(grid[0, 1:])
    blocks = [(b, v['firing_rate']) for b, v in rates['blocks'].items()
              if v['firing_rate'] is not None]
    ax.bar(range(len(blocks)), [r for _, r in blocks],
           color=['tab:orange' if b in chosen else 'tab:blue' for b, _ in blocks])
    ax.set_xticks(range(len(blocks)), [b for b, _ in blocks], fontsize=7, rotation=90)
    ax.set_ylim(0, 1)
    ax.set_ylabel('firing rate')
    ax.set_title('firing rate of every block (drawn below: orange)', fontsize=9)
    what = 'channel mean' if recorder.channel is None else f'channel {recorder.channel}'
    spikes = matplotlib.colormaps['gray'].with_extremes(bad='tab:red')  # red: the tail
    for row, name in enumerate(names, start=1):
        maps, entry = recorder.maps[name], recorder.counts[name]
        # x, u and the output on one colour scale, so their values compare
        values = np.concatenate([maps[c].ravel() for c in COLUMNS if c != COLUMNS[2]])
        low, high = float(values.min()), float(values.max())
        for col, column in enumerate(COLUMNS):
            ax = fig.add_subplot(grid[row, col])
            if column == COLUMNS[2]:
                image = ax.imshow(maps[column], cmap=spikes, vmin=0, vmax=1)
            else:
                image = ax.imshow(maps[column], cmap='viridis', vmin=low, vmax=high)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
            ax.set_xticks([])
            ax.set_yticks([])
            label = column if row > 1 else f'{column} ({what})'
            if column == COLUMNS[2] and row == 1:
                label += '\nred: tail after the last full group (passes through)'
            ax.set_title(label, fontsize=8)
            if col == 0:
                rate = entry['firing_rate']  # None: the axis is shorter than one group
                ax.set_ylabel(f'{name}\nalong {entry["along"]}, group {entry["group"]}\n'
                              f'tau {entry["tau"]:.3g}, Vth {entry["Vth"]:.3g}\n'
                              f'rate {"n/a" if rate is None else f"{rate:.3f}"}', fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))  # room for the title
    fig.savefig(out_file, dpi=90)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    exit_unless_writable((args.out_dir, '--out-dir', True))
    try:
        recorder, chosen, net_input = record(args.image, args.checkpoint, args.config,
                                             args.blocks, args.channel, args.device)
    except (FileNotFoundError, CheckpointError, ValueError) as err:
        sys.exit(f'error: {err}')
    rates = firing_rates(recorder.counts)
    rates.update(image=args.image, checkpoint=args.checkpoint, config=args.config,
                 input_shape=list(net_input.shape))
    os.makedirs(args.out_dir, exist_ok=True)
    png, json_file = osp.join(args.out_dir, PNG_NAME), osp.join(args.out_dir, JSON_NAME)
    draw(recorder, rates, chosen, net_input, png,
         title=f'{osp.basename(args.checkpoint)} on {osp.basename(args.image)}')
    with open(json_file, 'w') as f:
        json.dump(rates, f, indent=2)
    for block, value in rates['blocks'].items():
        rate = value['firing_rate']
        print(f'block {block:>5s}: firing rate {"off" if rate is None else f"{rate:.3f}"}')
    print(f'wrote {png} ({len(recorder.maps)} LIF neuron layers of blocks {" ".join(chosen)}) '
          f'and {json_file}')
    return rates


if __name__ == '__main__':
    main()
