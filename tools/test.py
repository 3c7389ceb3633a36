"""Test (and evaluate) an SNN-MLP detector (mmdet config) or segmentor (mmseg config).

Mirrors mmdet's and mmseg's tools/test.py. ``--tta`` switches to the config's
test-time augmentation (for the ADE20K configs: the paper's multi-scale + flip).
``--out``: for detection a .pkl of raw results, for segmentation a folder of
predicted label PNGs.
"""
import argparse
import os
import sys

from mmengine.dist import is_main_process
from mmengine.registry import RUNNERS

import mmsnnmlp  # noqa: F401  registers SNNMLP, makes checkpoint I/O safe
from mmsnnmlp.checkpoint import check_state_dict_fits
from mmsnnmlp.datasets import DataError, check_data
from mmsnnmlp.engine.launch import (add_launch_args, end_launch, launcher_rank, load_tool_config,
                                    parse_launch_args, prepare_cpu_launch,
                                    warn_if_classes_differ)
from mmsnnmlp.engine.runner import SafeRunner as Runner
from mmsnnmlp.fileio import OutputPathError, atomic_write_json, check_writable
from mmsnnmlp.models import CheckpointError, safe_load


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector or segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='detection: dump raw results to this .pkl; '
                        'segmentation: save predicted label maps in this folder')
    parser.add_argument('--show-dir', help='save drawn predictions in this folder (inside '
                        'the work dir; detection puts it under the run\'s timestamp folder)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument('--metrics-json', help='also write the final metrics to this JSON file')
    parser.add_argument('--force', action='store_true',
                        help='overwrite existing --out / --metrics-json outputs')
    add_launch_args(parser)
    return parse_launch_args(parser, argv)


def enable_drawing(cfg, show_dir: str) -> None:
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        sys.exit('--show-dir needs a visualization hook in default_hooks')
    hook['draw'] = True
    if cfg.default_scope == 'mmdet':
        hook['test_out_dir'] = show_dir
    else:  # like mmdet's hook: a relative folder lands in the work dir
        cfg.visualizer['save_dir'] = os.path.join(cfg.work_dir, show_dir)


def check_outputs(args, cfg=None) -> None:
    """Exit naming the output that cannot be written, before any slow work:
    the arguments' own paths first, then (given the config) the work dir."""
    if cfg is None:
        outputs = [(args.metrics_json, False, '--metrics-json')]
        if args.out:  # detection: a .pkl file; segmentation: a folder
            outputs.append((args.out, not args.out.endswith(('.pkl', '.pickle')), '--out'))
    else:
        outputs = [(cfg.work_dir, True, 'work dir')]
        if args.show_dir:
            outputs.append((os.path.join(cfg.work_dir, args.show_dir), True, '--show-dir'))
    for path, folder, what in outputs:
        if path:
            try:
                check_writable(path, folder=folder, what=what)
            except OutputPathError as err:
                sys.exit(str(err))


def build_runner(cfg):
    """The config's runner: SafeRunner (``Runner`` here) unless it names another."""
    if cfg.get('runner_type', 'SafeRunner') == 'SafeRunner':
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def main(argv=None):
    args = parse_args(argv)
    check_outputs(args)
    cfg = load_tool_config(args)
    check_outputs(args, cfg)
    prepare_cpu_launch(cfg, args.launcher)
    # A missing, truncated, corrupt or unsafe file stops us before anything is built.
    try:
        checkpoint = safe_load(args.checkpoint)
    except (FileNotFoundError, CheckpointError) as err:
        sys.exit(f'Cannot use checkpoint: {err}')
    cfg.load_from = args.checkpoint
    warn_if_classes_differ(cfg, checkpoint, args.checkpoint)
    for path in (args.out, args.metrics_json):
        if path and not args.force and os.path.exists(path) and \
                (os.path.isfile(path) or os.listdir(path)):
            sys.exit(f'{path} exists; pass --force to overwrite it')
    if args.show_dir:
        enable_drawing(cfg, args.show_dir)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            sys.exit('--tta needs tta_model and tta_pipeline in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out:
        if cfg.default_scope == 'mmdet':
            if not args.out.endswith(('.pkl', '.pickle')):
                sys.exit('--out for detection must be a .pkl file')
            evaluators = cfg.test_evaluator
            evaluators = list(evaluators) if isinstance(evaluators, (list, tuple)) else [evaluators]
            cfg.test_evaluator = evaluators + [dict(type='DumpDetResults', out_file_path=args.out)]
        else:
            cfg.test_evaluator['output_dir'] = args.out
            cfg.test_evaluator['keep_results'] = True
    if not args.no_data_check and launcher_rank() == 0:
        try:
            check_data(cfg, ['test_dataloader'])
        except DataError as err:
            sys.exit(f'Data check failed: {err}')
    runner = build_runner(cfg)
    # Strict: evaluating a checkpoint of another model would report a bogus score.
    try:
        check_state_dict_fits(runner.model, checkpoint, args.checkpoint)
    except CheckpointError as err:
        sys.exit(f'Cannot use checkpoint: {err}')
    del checkpoint
    metrics = runner.test()
    if args.metrics_json and is_main_process():
        atomic_write_json(args.metrics_json, metrics, overwrite=True)
    end_launch()
    return metrics


if __name__ == '__main__':
    main()
