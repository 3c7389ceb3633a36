"""What the LIF neurons of an SNN-MLP model do on an input: a recorder of
every LIF call, firing rates, and the models (detector, segmentor, classifier)
to run it on. Used by tools/analysis_tools/visualize_lif.py.

Firing rate of a LIF neuron layer: positions where u > Vth, divided by the
positions the neuron processes (all channels and positions of the full
groups; the tail rows/columns after the last full group pass through and are
not counted), over every call (a sliding-window test runs the backbone once
per crop). A block's rate pools all its LIF neurons. Neurons switched off
(``lif_group=-1``), or whose axis is shorter than one group, have a rate of null.

Block names: ``S.B`` is block B of stage S; ``S`` alone is the LIF layer after
stage S (``lif_placement='after_stage'``).
"""
import os.path as osp
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from torch import Tensor, nn

from ..checkpoint import check_state_dict_fits, safe_load
from ..engine.launch import library_of
from ..ops import LIF, lif_trace

COLUMNS = ('input x', 'membrane potential u', 'fires (u > Vth)', 'output')


class Recorder:
    """Forward hooks on every :class:`~mmsnnmlp.ops.LIF` inside ``model``.

    Every call of a LIF neuron is replayed with :func:`~mmsnnmlp.ops.lif_trace`
    (the reference recurrence) on its recorded input: its spike counts add up
    in :attr:`counts`, and for neurons under ``keep`` (module-name prefixes)
    the maps of the first call's batch element 0 go to :attr:`maps`. The
    replayed output must match the model's own."""

    def __init__(self, model: nn.Module, keep: Sequence[str] = (), channel: Optional[int] = None):
        self.neurons = OrderedDict((name, m) for name, m in model.named_modules()
                                   if isinstance(m, LIF))
        if not self.neurons:
            raise ValueError('This model has no LIF neurons (token_mixer other than "lif" and '
                             'no lif_placement?): nothing to look inside')
        self.keep, self.channel = tuple(keep), channel
        self.counts: Dict[str, Dict] = OrderedDict()
        self.maps: Dict[str, Dict[str, np.ndarray]] = OrderedDict()
        self._handles = [m.register_forward_hook(self._hook(name))
                         for name, m in self.neurons.items()]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def _hook(self, name: str) -> Callable:
        def hook(module: LIF, inputs: Tuple[Tensor], output: Tensor) -> None:
            with torch.no_grad():
                self._record(name, module, inputs[0].detach(), output.detach())
        return hook

    def _record(self, name: str, module: LIF, x: Tensor, output: Tensor) -> None:
        entry = self.counts.setdefault(name, dict(
            along='H' if module.dim == 2 else 'W', group=module.group, tau=_value(module.tau),
            Vth=_value(module.Vth), shape=list(x.shape), fired=None, positions=None,
            firing_rate=None))
        if module.group == -1:  # switched off: the identity
            return
        x = x.float()
        out, u, fired = lif_trace(x, module.tau, module.Vth, module.group, module.dim)
        if not torch.allclose(out, output.float(), rtol=1e-4, atol=1e-5):
            raise RuntimeError(f'{name}: the reference LIF recurrence does not reproduce the '
                               'model\'s output; the recording would be wrong')
        length = x.shape[module.dim]
        size = length if module.group is None else module.group
        processed = (length // size) * size
        positions = x.numel() // length * processed
        # summed over calls (a sliding-window test runs the backbone once per crop)
        entry['fired'] = (entry['fired'] or 0) + int(fired.sum())
        entry['positions'] = (entry['positions'] or 0) + positions
        if entry['positions']:
            entry['firing_rate'] = entry['fired'] / entry['positions']
        if name.startswith(self.keep) and name not in self.maps:  # the first call's maps
            pick = (lambda t: t[0].float().mean(0)) if self.channel is None else \
                (lambda t: t[0, self.channel].float())
            if self.channel is not None and not 0 <= self.channel < x.shape[1]:
                raise ValueError(f'--channel {self.channel} is out of range: {name} has '
                                 f'{x.shape[1]} channels')
            self.maps[name] = {col: pick(t).cpu().numpy()
                               for col, t in zip(COLUMNS, (x, u, fired, out))}
            tail = self.maps[name][COLUMNS[2]]
            if module.dim == 2:  # rows / columns the neuron passes through: no spikes to show
                tail[processed:] = np.nan
            else:
                tail[:, processed:] = np.nan


def _value(scalar) -> float:
    """A LIF's tau or Vth: a one-element parameter, or a plain float when fixed."""
    return float(scalar.detach()) if isinstance(scalar, Tensor) else float(scalar)


def block_of(name: str) -> Optional[str]:
    """'S.B' for a neuron under layers.S.blocks.B, 'S' under layers.S (after the stage)."""
    parts = name.split('.')
    if len(parts) > 3 and parts[0] == 'layers' and parts[2] == 'blocks':
        return f'{parts[1]}.{parts[3]}'
    if len(parts) > 1 and parts[0] == 'layers':
        return parts[1]
    return None


def block_prefix(block: str) -> str:
    stage, _, index = block.partition('.')
    return f'layers.{stage}.blocks.{index}.' if index else f'layers.{stage}.lif.'


def firing_rates(counts: Dict[str, Dict]) -> Dict:
    """The JSON document: every neuron's counts, and each block's pooled rate."""
    blocks: Dict[str, Dict] = OrderedDict()
    for name, entry in counts.items():
        block = blocks.setdefault(block_of(name) or name, dict(fired=0, positions=0))
        if entry['positions']:
            block['fired'] += entry['fired']
            block['positions'] += entry['positions']
    for block in blocks.values():
        block['firing_rate'] = block['fired'] / block['positions'] if block['positions'] else None
    return dict(
        definition='firing_rate = positions with u > Vth / positions the LIF processes (all '
                   'channels, full groups only, every call) on this image; a block pools its '
                   'neurons',
        neurons=counts, blocks=blocks)


def check_blocks(blocks: Sequence[str], neurons: Sequence[str]) -> List[str]:
    available = OrderedDict((block_of(n), None) for n in neurons if block_of(n))
    if blocks is None:  # the first block (or stage LIF) of every stage
        firsts = OrderedDict()
        for block in available:
            firsts.setdefault(block.split('.')[0], block)
        return list(firsts.values())
    missing = [b for b in blocks if b not in available]
    if missing:
        raise ValueError(f'--blocks {" ".join(missing)}: no LIF neurons there; blocks with LIF '
                         f'neurons: {" ".join(available)}')
    return list(blocks)


def _read_rgb(path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    if not osp.isfile(path):
        raise FileNotFoundError(f'Image not found: {path}')
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert('RGB'))
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f'Cannot read image {path}: {err}') from None


def dense_model(config: str, checkpoint: str, device: str):
    """(model, library, run(image path) -> None) for an mmdet/mmseg config."""
    library = library_of(Config.fromfile(config))
    state = safe_load(checkpoint)
    if library == 'mmdet':
        from mmdet.apis import inference_detector as infer
        from mmdet.apis import init_detector as init
    else:
        from mmseg.apis import inference_model as infer
        from mmseg.apis import init_model as init
    model = init(config, checkpoint, device=device)
    check_state_dict_fits(model, state, checkpoint)  # the libraries load whatever fits
    return model, model.backbone, lambda image: infer(model, image)


def classification_model(config: Optional[str], checkpoint: str, device: str):
    """(model, model, run(image path) -> None) for a classifier checkpoint."""
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    from ..models.snnmlp_timm import (TIMM_MODEL_NAMES, classifier_config,
                                      create_from_checkpoint, register_timm_models)
    register_timm_models()
    variant, kwargs = None, {}
    if config in TIMM_MODEL_NAMES:
        variant = config
    elif config is not None:
        if not osp.isfile(config):
            raise ValueError(f'--config {config}: neither a config file nor one of the timm '
                             f'models {", ".join(TIMM_MODEL_NAMES)}')
        variant, kwargs = classifier_config(config)
    model, _ = create_from_checkpoint(checkpoint, variant, **kwargs)
    model.to(device)
    transform = create_transform(**resolve_data_config({}, model=model))

    def run(image: str) -> None:
        batch = transform(Image.fromarray(_read_rgb(image))).unsqueeze(0).to(device)
        with torch.no_grad():
            model(batch)
    return model, model, run


def is_dense_config(config: Optional[str]) -> bool:
    if config is None or not config.endswith('.py'):
        return False
    return Config.fromfile(config).get('default_scope') in ('mmdet', 'mmseg')


def record(image: str, checkpoint: str, config: Optional[str] = None,
           blocks: Optional[Sequence[str]] = None, channel: Optional[int] = None,
           device: str = 'cpu') -> Tuple[Recorder, List[str], Tensor]:
    """Run the model on ``image`` with a :class:`Recorder` attached.

    Returns (recorder, the blocks drawn, the image as the network saw it:
    the backbone's input, batch element 0)."""
    build = dense_model if is_dense_config(config) else classification_model
    _, network, run = build(config, checkpoint, device)
    network.eval()
    seen = {}

    def grab_input(module, args):  # must return None: a value would replace the input
        seen.setdefault('x', args[0][0].detach())

    grab = network.register_forward_pre_hook(grab_input)
    recorder = Recorder(network, channel=channel)
    chosen = check_blocks(blocks, list(recorder.neurons))
    recorder.keep = tuple(block_prefix(b) for b in chosen)
    _read_rgb(image)  # a clear error for a bad image, before the libraries' own
    try:
        run(image)
    finally:
        recorder.remove()
        grab.remove()
    return recorder, chosen, seen['x'].float().cpu()
