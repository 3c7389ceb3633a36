"""Train an SNN-MLP detector (mmdet config) or segmentor (mmseg config).

Mirrors mmdet's and mmseg's tools/train.py: same arguments, mmengine Runner,
launchers none/pytorch/slurm/mpi. What makes runs safe lives in the plugin
and the configs (safe checkpoint loading, SafeCheckpointHook, RNGStateHook),
so mmdet's and mmseg's own train.py get it too. This tool adds checks that
stop a bad run before anything is built: one run per work dir, no silent
overwrite of an earlier run, the backbone arguments, the data.
"""
import argparse
import os
import sys

import torch
from mmengine.registry import RUNNERS

import mmsnnmlp  # noqa: F401  registers SNNMLP and the hooks, makes checkpoint I/O safe
from mmsnnmlp.datasets import DataError, check_data
from mmsnnmlp.engine import WorkDirBusy, claim_work_dir, keep_optimizer_step_eager
from mmsnnmlp.engine.launch import (add_launch_args, dataloader_keys, end_launch, launcher_rank,
                                    load_tool_config, parse_launch_args, prepare_cpu_launch)
from mmsnnmlp.engine.runner import SafeRunner as Runner
from mmsnnmlp.fileio import OutputPathError, check_writable
from mmsnnmlp.models import SNNMLP, CheckpointError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the LR by total batch / config base_batch_size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or without a path from the '
                        'latest one in the work dir')
    parser.add_argument('--force', action='store_true',
                        help='start afresh in a work dir that holds checkpoints of an earlier '
                        'run (they may be overwritten)')
    add_launch_args(parser)
    return parse_launch_args(parser, argv)


def earlier_checkpoints(work_dir: str) -> bool:
    return os.path.isdir(work_dir) and any(
        f == 'last_checkpoint' or f.endswith('.pth') for f in os.listdir(work_dir))


def check_backbone(cfg, config_path: str) -> None:
    """Build an SNNMLP backbone alone first: a bad value stops with one clear line."""
    backbone = cfg.model.get('backbone', {})
    if backbone.get('type') != 'SNNMLP':
        return
    kwargs = {k: v for k, v in backbone.items() if k not in ('type', 'init_cfg')}
    try:
        SNNMLP(**kwargs)
    except (TypeError, ValueError) as err:
        sys.exit(f'Bad model.backbone in {config_path}: {err}')


def apply_args(cfg, args) -> None:
    """--amp, --auto-scale-lr and --resume, as mmdet's train.py applies them."""
    if args.amp:
        if not torch.cuda.is_available():
            sys.exit('--amp needs a CUDA GPU (mmengine\'s AmpOptimWrapper); CPU training runs '
                     'in float32')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in (cfg.get('auto_scale_lr') or {}):
            sys.exit('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not os.path.isfile(args.resume):
            sys.exit(f'--resume checkpoint not found: {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume


def main(argv=None):
    args = parse_args(argv)
    cfg = load_tool_config(args)
    prepare_cpu_launch(cfg, args.launcher)
    apply_args(cfg, args)
    if launcher_rank() == 0:  # once per run, not once per process
        try:
            check_writable(cfg.work_dir, folder=True, what='work dir')
            claim_work_dir(cfg.work_dir)
        except (OutputPathError, WorkDirBusy) as err:
            sys.exit(str(err))
        if not cfg.resume and not args.force and earlier_checkpoints(cfg.work_dir):
            sys.exit(f'{cfg.work_dir} holds checkpoints of an earlier run; pass --resume to '
                     'continue it, --force to start afresh there, or another --work-dir')
        check_backbone(cfg, args.config)
        if not args.no_data_check:
            try:
                check_data(cfg, dataloader_keys(cfg, 'train'))
            except DataError as err:
                sys.exit(f'Data check failed: {err}')
    # SafeRunner (``Runner`` here) claims the work dir again: a no-op after ours
    if cfg.get('runner_type', 'SafeRunner') == 'SafeRunner':
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    if cfg.get('compile'):
        keep_optimizer_step_eager(runner)
    try:
        runner.train()
    except (CheckpointError, WorkDirBusy) as err:
        sys.exit(f'Cannot train: {err}')
    end_launch()


if __name__ == '__main__':
    main()
