"""Config loading shared by tools/train.py, tools/test.py and the demos."""
import os
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.config import Config

LIBRARIES = ('mmdet', 'mmseg')


def library_of(cfg: Config) -> str:
    """'mmdet' or 'mmseg', from the config's ``default_scope``."""
    scope = cfg.get('default_scope')
    if scope not in LIBRARIES:
        raise ValueError(f'Config default_scope must be one of {LIBRARIES}, got {scope!r}')
    return scope


def load_config(path: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Read a config, apply ``--cfg-options`` and settle ``work_dir``.

    work_dir priority, as in mmdet/mmseg: CLI > config > ./work_dirs/<config name>."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file not found: {path}')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    library_of(cfg)
    if launcher != 'none' and not torch.cuda.is_available():
        setup_cpu_distributed(cfg, launcher)
    return cfg


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Multi-process training without GPUs: gloo, DDP without device ids, and
    a SyncBN that synchronises CPU tensors.

    mmengine's launchers always pin a CUDA device, so for ``pytorch`` we join
    the process group ourselves (the Runner then skips its own init)."""
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters',
                                                                    False))
    if launcher == 'pytorch' and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')
    from .sync_bn import use_cpu_sync_bn
    use_cpu_sync_bn()


def add_launch_args(parser) -> None:
    """The arguments tools/train.py and tools/test.py share with mmdet's and mmseg's."""
    from mmengine.config import DictAction
    parser.add_argument('--no-data-check', action='store_true',
                        help='skip the pre-flight check of data roots and files')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launch_args(parser, argv=None):
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def dataloader_keys(cfg: Config, mode: str) -> Sequence[str]:
    """The dataloaders a train or test run will build."""
    if mode == 'train':
        keys = ['train_dataloader']
        if cfg.get('val_cfg') and cfg.get('val_dataloader'):
            keys.append('val_dataloader')
        return keys
    return ['test_dataloader']
