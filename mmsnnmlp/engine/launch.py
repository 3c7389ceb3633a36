"""Config loading and the launch steps shared by tools/train.py and tools/test.py."""
import ast
import difflib
import importlib
import inspect
import os
import os.path as osp
import sys
import warnings
from typing import Iterator, Mapping, Optional, Sequence, Set, Tuple

import torch
from mmengine.config import Config

LIBRARIES = ('mmdet', 'mmseg')


def library_of(cfg: Config) -> str:
    """'mmdet' or 'mmseg', from the config's ``default_scope``."""
    scope = cfg.get('default_scope')
    if scope not in LIBRARIES:
        raise ValueError(f'Config default_scope must be one of {LIBRARIES}, got {scope!r}')
    return scope


def _base_paths(tree: ast.Module, path: str) -> Iterator[str]:
    """The files a config's literal ``_base_`` names (``pkg::`` resolved),
    as normalised paths; what cannot be resolved is left out."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            try:
                bases = ast.literal_eval(node.value)
            except ValueError:
                continue
            for base in [bases] if isinstance(bases, str) else bases:
                if '::' in base:
                    try:
                        base = Config._get_cfg_path(base, path)[0]
                    except Exception:  # noqa: BLE001  mmengine raises several kinds
                        continue
                yield osp.normpath(osp.join(osp.dirname(path), base))


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
    for base in _base_paths(tree, path):
        found = _syntax_error_in(base, seen)
        if found:
            return found
    return None


class ConfigWarning(UserWarning):
    """A config setting that is likely not what its author meant."""


# Top-level keys that mmengine, mmdet, mmseg or our tools read, besides the
# Runner's own arguments, and common variables of their base configs.
KNOWN_KEYS = ('runner_type', 'custom_imports', 'model_wrapper_cfg', 'find_unused_parameters',
              'compile', 'strategy', 'work_dir', 'launcher', 'tta_model', 'tta_pipeline',
              'train_pipeline', 'val_pipeline', 'test_pipeline', 'backend_args', 'dataset_type',
              'data_root', 'vis_backends', 'max_epochs', 'max_iters', 'val_interval',
              'norm_cfg', 'crop_size', 'img_scale', 'metainfo', 'file_client_args')
_MISSING = object()


def _assigned_names(tree: ast.Module) -> Set[str]:
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def base_keys(path: str, seen=None) -> Set[str]:
    """Top-level names the bases of config ``path`` assign (read, not run;
    recursively), not those of ``path`` itself."""
    seen = set() if seen is None else seen
    found: Set[str] = set()
    if path in seen or not osp.isfile(path):
        return found
    seen.add(path)
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
    except (SyntaxError, UnicodeDecodeError, OSError):
        return found
    for base in _base_paths(tree, path):
        if base not in seen and osp.isfile(base):
            with open(base, encoding='utf-8') as f:
                try:
                    found |= _assigned_names(ast.parse(f.read(), filename=base))
                except SyntaxError:
                    pass
        found |= base_keys(base, seen)
    return found


def warn_near_miss_keys(cfg: Config, path: str) -> None:
    """Warn about each top-level key nothing reads that is one typo away
    from a known one (``trian_cfg``): mmengine ignores it silently."""
    from mmengine.runner import Runner  # here: mmengine.runner imports cv2
    known = set(inspect.signature(Runner.__init__).parameters) - {'self'}
    known |= set(KNOWN_KEYS) | base_keys(osp.abspath(path))
    for key in cfg.keys():
        if key in known or key.startswith('_'):
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if close:
            warnings.warn(f"Config key '{key}' is read by nothing, so it is ignored; did you "
                          f"mean '{close[0]}'? ({path})", ConfigWarning, stacklevel=3)


def _lookup(cfg, dotted: str):
    node = cfg
    for part in dotted.split('.'):
        if isinstance(node, (Mapping, Config)) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def check_option_types(cfg: Config, options: Mapping) -> None:
    """Raise ValueError naming the key for a ``--cfg-options`` value whose
    kind cannot stand for the config's (a word for a number or a flag)."""
    for key, value in options.items():
        old = _lookup(cfg, key)
        if old is _MISSING or old is None or value is None:
            continue
        if isinstance(old, bool):
            fits, kind = type(value) in (bool, int), 'True or False'
        elif isinstance(old, (int, float)):
            fits, kind = type(value) in (int, float), 'a number'
        else:
            continue
        if not fits:
            raise ValueError(f'--cfg-options {key}={value!r}: {key} must be {kind} (the '
                             f'config has {old!r}), got {type(value).__name__} {value!r}')


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
        check_option_types(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    warn_near_miss_keys(cfg, path)
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


def dataset_classes(cfg: Config, key: str = 'test_dataloader') -> Optional[Tuple[str, ...]]:
    """The classes of a dataloader's dataset: its metainfo, else its dataset
    class's default (None when neither is known)."""
    ds = (cfg.get(key) or {}).get('dataset') or {}
    while ds.get('dataset') or ds.get('datasets'):  # wrappers: Repeat, ClassBalanced, Concat
        ds = ds['dataset'] if ds.get('dataset') else ds['datasets'][0]
    classes = (ds.get('metainfo') or {}).get('classes')
    if classes:
        return tuple(classes)
    kind = ds.get('type')
    if isinstance(kind, str):
        try:
            kind = importlib.import_module(f'{library_of(cfg)}.registry').DATASETS.get(kind)
        except Exception:  # noqa: BLE001  unknown library or type: nothing to compare
            return None
    classes = (getattr(kind, 'METAINFO', None) or {}).get('classes')
    return tuple(classes) if classes else None


def checkpoint_classes(checkpoint) -> Optional[Tuple[str, ...]]:
    """The classes a checkpoint was trained on (mmengine's meta.dataset_meta)."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    dataset_meta = (meta or {}).get('dataset_meta') if isinstance(meta, Mapping) else None
    if not isinstance(dataset_meta, Mapping):
        return None
    classes = dataset_meta.get('classes', dataset_meta.get('CLASSES'))
    return tuple(classes) if classes else None


def warn_if_classes_differ(cfg: Config, checkpoint, source: str,
                           key: str = 'test_dataloader') -> None:
    """Warn when the checkpoint's classes are not the config's, order included:
    the model's output i is then scored and named as the config's class i."""
    trained, configured = checkpoint_classes(checkpoint), dataset_classes(cfg, key)
    if trained is None or configured is None or trained == configured:
        return
    how = 'in another order' if sorted(trained) == sorted(configured) else 'different'
    warnings.warn(f"The classes of {source} (its dataset_meta) and of the config's {key} are "
                  f'{how}: predictions are scored and named by the config\'s order. '
                  f'Checkpoint: {trained}; config: {configured}', ConfigWarning, stacklevel=2)


def exit_unless_writable(*outputs) -> None:
    """Exit naming the first output that cannot be written (see
    :func:`mmsnnmlp.fileio.check_writable`); each output is ``(path, what)``
    for a file or ``(path, what, True)`` for a folder; a None path is skipped.
    For tools, before their slow work."""
    from ..fileio import OutputPathError, check_writable
    for path, what, *folder in outputs:
        if path:
            try:
                check_writable(path, folder=bool(folder and folder[0]), what=what)
            except OutputPathError as err:
                sys.exit(str(err))
