"""Whole-model inference benchmark of detector / segmentor configs on a
dataset's images, through the config's real test pipeline and dataloader
(``tools/analysis_tools/benchmark_model.py`` is its command line).

Per config: the time to fetch each batch from the dataloader (loading,
resizing, packing) apart from the model's time (``model.test_step``: data
preprocessor, forward, post-processing), on CPU or a GPU; params; FLOPs at
the first batch's input shape (:func:`mmsnnmlp.analysis.flops.complexity`);
peak memory over the timed pass (:class:`mmsnnmlp.analysis.benchmark.MemoryMeter`);
and the config's test metric (mAP / mIoU) when the annotations are there.

Configs come from files or packages (``mmsnnmlp::det/...``, ``mmdet::swin/...``,
``mmseg::...``), so ours run side by side with the libraries' own baselines.
Without a checkpoint the weights are random: the speed, params and FLOPs
hold, the metric is then only a check that evaluation runs.
"""
import copy
import itertools
import os.path as osp
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch

from .benchmark import DTYPES, MemoryMeter, autocast, sync

# (key, header, format) for the tables of mmsnnmlp.analysis.tables
COLUMNS = [('name', 'model', ''), ('library', 'library', ''), ('params_m', 'params (M)', '.2f'),
           ('flops_g', 'FLOPs (G)', '.1f'), ('flops_shape', 'FLOPs at', ''),
           ('images', 'images', 'd'), ('data_ms', 'data ms/img', '.1f'),
           ('model_ms', 'model ms/img', '.1f'), ('fps', 'model img/s', '.2f'),
           ('peak_mib', 'peak MiB', '.0f'), ('metric', 'metric', ''),
           ('score', 'score', '.4g'), ('weights', 'weights', '')]
# the metric reported per library (first one present in the evaluator's results)
METRIC_KEYS = {'mmdet': ('coco/bbox_mAP', 'coco/segm_mAP', 'pascal_voc/mAP'),
               'mmseg': ('mIoU', 'aAcc')}


def _evaluators(cfg) -> list:
    ev = cfg.get('test_evaluator')
    if ev is None:
        return []
    return list(ev) if isinstance(ev, (list, tuple)) else [ev]


def set_data_root(cfg, data_root: str) -> None:
    """Point the test dataset (and the evaluator's annotation file, which
    configs spell as ``data_root + 'annotations/...'``) at ``data_root``."""
    dataset = cfg.test_dataloader.dataset
    while 'data_root' not in dataset and 'dataset' in dataset:  # wrappers
        dataset = dataset.dataset
    old = dataset.get('data_root') or ''
    dataset.data_root = data_root
    for ev in _evaluators(cfg):
        ann = ev.get('ann_file')
        if ann and old and ann.startswith(old):
            ev.ann_file = osp.join(data_root, ann[len(old):].lstrip('/'))


def load_benchmark_config(path: str, cfg_options: Optional[dict] = None,
                          data_root: Optional[str] = None, num_images: Optional[int] = None,
                          num_workers: Optional[int] = None):
    """The config with ``cfg_options``, ``data_root`` and the first
    ``num_images`` images of its test set."""
    from ..engine.launch import load_config
    cfg = load_config(path, cfg_options)
    if data_root:
        set_data_root(cfg, data_root)
    loader = cfg.test_dataloader
    if num_images:
        loader.dataset.indices = int(num_images)
    if num_workers is not None:
        loader.num_workers = num_workers
        loader.persistent_workers = bool(num_workers)
    return cfg


def has_annotations(cfg, dataset) -> bool:
    """Whether the test metric can be computed: an evaluator, not in
    format-only mode, with its annotation file (detection) or the
    first image's label map (segmentation) on disk."""
    evaluators = _evaluators(cfg)
    if not evaluators or any(ev.get('format_only') for ev in evaluators):
        return False
    for ev in evaluators:
        if ev.get('ann_file') and not osp.isfile(ev.ann_file):
            return False
    if len(dataset) == 0:
        return False
    seg_map = dataset.get_data_info(0).get('seg_map_path')
    return seg_map is None or osp.isfile(seg_map)


def build_model(cfg, device: torch.device, checkpoint: Optional[str] = None):
    """The config's model in eval mode on ``device``, with the checkpoint's
    weights or random ones (pretrained backbones are not fetched)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS
    cfg = copy.deepcopy(cfg)
    if cfg.model.get('backbone') is not None:
        cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    if checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.to(device).eval()


def _input_shape(model, batch) -> tuple:
    """(H, W) of the batch as the model sees it (after the preprocessor's
    padding)."""
    with torch.no_grad():
        data = model.data_preprocessor(copy.copy(batch), False)
    return tuple(data['inputs'].shape[-2:])


def _first_score(metrics: Dict, library: str):
    for key in METRIC_KEYS.get(library, ()):
        if metrics.get(key) is not None and metrics[key] >= 0:
            return key, float(metrics[key])
    return None, None


def benchmark_config(path: str, device='cpu', name: Optional[str] = None,
                     checkpoint: Optional[str] = None, cfg_options: Optional[dict] = None,
                     data_root: Optional[str] = None, num_images: Optional[int] = None,
                     num_workers: Optional[int] = 0, warmup: int = 2, dtype: str = 'fp32',
                     flops: bool = True, evaluate: bool = True,
                     log: Callable[[str], None] = print) -> Dict:
    """One result row for the config at ``path`` (see the module doc).

    ``warmup`` batches run (untimed, not evaluated) before one timed pass
    over the test images (the first ``num_images``), which also feeds the
    evaluator. Times are medians over the batches, per image."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from ..engine.launch import library_of
    device = torch.device(device)
    cfg = load_benchmark_config(path, cfg_options, data_root, num_images, num_workers)
    library = library_of(cfg)
    init_default_scope(library)
    name = name or osp.splitext(osp.basename(path))[0]
    loader = Runner.build_dataloader(cfg.test_dataloader)
    dataset = loader.dataset
    evaluate = evaluate and has_annotations(cfg, dataset)
    model = build_model(cfg, device, checkpoint)
    params = sum(p.numel() for p in model.parameters())
    log(f'{name}: {len(dataset)} images, batch {loader.batch_size}, {library} on {device}, '
        f'{params / 1e6:.2f} M params')

    def step(batch):
        with torch.no_grad(), autocast(device, DTYPES[dtype]):
            out = model.test_step(batch)
        sync(device)
        return out

    for batch in itertools.islice(itertools.cycle(loader), warmup):
        step(batch)
    evaluator = None
    if evaluate:
        evaluator = _build_evaluator(cfg.test_evaluator)
        evaluator.dataset_meta = dataset.metainfo
    data_ms, model_ms, sizes, shape = [], [], [], None
    with MemoryMeter(device) as mem:
        batches = iter(loader)
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            t1 = time.perf_counter()
            if batch is None:
                break
            outputs = step(batch)
            t2 = time.perf_counter()
            n = len(batch['inputs'])
            sizes.append(n)
            data_ms.append((t1 - t0) * 1e3 / n)
            model_ms.append((t2 - t1) * 1e3 / n)
            if shape is None:
                shape = _input_shape(model, batch)
            if evaluator is not None:
                evaluator.process(data_samples=outputs, data_batch=batch)
    images = sum(sizes)
    row = dict(name=name, config=path, library=library, device=str(device), dtype=dtype,
               images=images, batch_size=loader.batch_size, warmup=warmup,
               params_m=round(params / 1e6, 3), input_shape=list(shape) if shape else None,
               data_ms=round(statistics.median(data_ms), 3) if data_ms else None,
               model_ms=round(statistics.median(model_ms), 3) if model_ms else None,
               fps=round(images / (sum(m * n for m, n in zip(model_ms, sizes)) / 1e3), 3)
               if images else None,
               peak_mib=round(mem.peak_mib, 1) if mem.peak_mib is not None else None,
               weights=checkpoint or 'random', flops_g=None, flops_shape=None,
               metric=None, score=None, metrics=None)
    del model
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    if evaluator is not None and images:
        metrics = evaluator.evaluate(len(dataset))
        row['metrics'] = {k: _plain(v) for k, v in metrics.items()}
        row['metric'], row['score'] = _first_score(metrics, library)
    if flops and shape is not None:
        from .flops import complexity
        result = complexity(copy.deepcopy(cfg), *shape)
        row['flops_g'] = round(result['flops'] / 1e9, 3)
        row['flops_shape'] = 'x'.join(map(str, shape))
    log(f"{name}: data {row['data_ms']} ms/img, model {row['model_ms']} ms/img, "
        f"FLOPs {row['flops_g']} G, {row['metric']} {row['score']}")
    return row


def _build_evaluator(evaluator_cfg):
    """mmengine's Runner.build_evaluator, without a runner."""
    from mmengine.evaluator import Evaluator
    from mmengine.registry import EVALUATOR
    if isinstance(evaluator_cfg, dict) and 'metrics' in evaluator_cfg:
        evaluator_cfg.setdefault('type', 'Evaluator')
        return EVALUATOR.build(evaluator_cfg)
    return Evaluator(evaluator_cfg)


def _plain(value):
    """A JSON-able metric value."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    try:
        import numpy as np
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    return value


def benchmark_configs(paths: Sequence[str], names: Optional[Sequence[str]] = None,
                      checkpoints: Optional[Sequence[Optional[str]]] = None,
                      log: Callable[[str], None] = print, **kwargs) -> List[Dict]:
    """:func:`benchmark_config` for each config in turn (one at a time, so
    each peak memory is that model's own)."""
    names = list(names) if names else [None] * len(paths)
    checkpoints = list(checkpoints) if checkpoints else [None] * len(paths)
    if len(names) != len(paths) or len(checkpoints) != len(paths):
        raise ValueError('give one name and one checkpoint per config (or none)')
    return [benchmark_config(p, name=n, checkpoint=c, log=log, **kwargs)
            for p, n, c in zip(paths, names, checkpoints)]


def report_markdown(rows: Sequence[Dict], env: Dict) -> str:
    """The rows as a markdown table under a line on the environment."""
    from .tables import markdown_table
    head = (f"Device {env.get('device')} ({env.get('gpu') or env.get('cpu')}), torch "
            f"{env.get('torch')}, {env.get('threads')} threads, load "
            f"{env.get('loadavg_1min')}. Times are medians per image over the test images; "
            'data = dataloader (test pipeline), model = test_step (preprocess, forward, '
            'post-process).')
    return head + '\n\n' + markdown_table(rows, COLUMNS) + '\n'
