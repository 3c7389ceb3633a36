"""Config loading and the launch steps shared by tools/train.py and tools/test.py."""
import ast
import os
import os.path as osp
import sys
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


def _syntax_error_in(path: str, seen=None) -> Optional[str]:
    """'FILE, line N: message' for the first syntax error in ``path`` or the
    configs it inherits (mmengine's own message names neither)."""
    seen = set() if seen is None else seen
    if path in seen or not osp.isfile(path):
        return None
    seen.add(path)
    with open(path, encoding='utf-8') as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as err:
        return f'{path}, line {err.lineno}: {err.msg}' + (
            f'\n    {err.text.rstrip()}' if err.text else '')
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            try:
                bases = ast.literal_eval(node.value)
            except ValueError:
                return None
            for base in [bases] if isinstance(bases, str) else bases:
                if '::' in base:
                    try:
                        base = Config._get_cfg_path(base, path)[0]
                    except Exception:
                        continue
                found = _syntax_error_in(osp.normpath(osp.join(osp.dirname(path), base)), seen)
                if found:
                    return found
    return None


def load_config(path: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Read a config, apply ``--cfg-options`` and settle ``work_dir``.

    ``path`` may name a shipped config as ``mmsnnmlp::det/NAME.py``. work_dir
    priority, as in mmdet/mmseg: CLI > config > ./work_dirs/<config name>."""
    if '::' in path:  # a config shipped with an installed package
        try:
            path = Config._get_cfg_path(path, '')[0]
        except (ValueError, AssertionError, ModuleNotFoundError, FileNotFoundError) as err:
            raise FileNotFoundError(f'Config file not found: {path} ({err})') from None
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as err:
        where = _syntax_error_in(osp.abspath(path)) or f'{path} ({err})'
        raise SyntaxError(f'Syntax error in config {where}') from None
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    library_of(cfg)
    return cfg


def load_tool_config(args) -> Config:
    """:func:`load_config` from the arguments tools/train.py and tools/test.py
    share, exiting with the reason when the config is missing or broken."""
    try:
        return load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    except (FileNotFoundError, SyntaxError, ValueError) as err:
        sys.exit(str(err))


def launcher_rank() -> int:
    """This process's global rank as the launcher set it, before any process
    group exists (torchrun, slurm, mpirun); 0 when not launched."""
    for var in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'):
        if os.environ.get(var, '').isdigit():
            return int(os.environ[var])
    return 0


def _swap_sync_bn(node) -> None:
    """type='SyncBN' -> 'CPUSyncBN' everywhere in a config subtree."""
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'CPUSyncBN'
        for value in node.values():
            _swap_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _swap_sync_bn(value)


def use_gloo_without_gpus(cfg: Config) -> None:
    """Set a config up for several CPU processes: the gloo backend, DDP
    without device ids, and SyncBN layers that synchronise CPU tensors
    (torch's SyncBatchNorm only syncs on GPUs)."""
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters',
                                                                    False))
    _swap_sync_bn(cfg.model)


def init_gloo_process_group() -> None:
    """Join the torchrun process group over gloo (mmengine's ``pytorch``
    launcher always pins a CUDA device; the Runner skips its own init then)."""
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')


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


def prepare_cpu_launch(cfg: Config, launcher: str) -> None:
    """Several processes without GPUs: :func:`use_gloo_without_gpus`, and for
    torchrun :func:`init_gloo_process_group` (nothing when GPUs are there)."""
    if launcher != 'none' and not torch.cuda.is_available():
        use_gloo_without_gpus(cfg)
        if launcher == 'pytorch':
            init_gloo_process_group()


def end_launch() -> None:
    """Leave the process group before exiting: gloo's threads abort the
    interpreter's shutdown now and then when it is left alive."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def dataloader_keys(cfg: Config, mode: str) -> Sequence[str]:
    """The dataloaders a train or test run will build."""
    if mode == 'train':
        keys = ['train_dataloader']
        if cfg.get('val_cfg') and cfg.get('val_dataloader'):
            keys.append('val_dataloader')
        return keys
    return ['test_dataloader']
