"""The changes ``import mmsnnmlp`` makes to mmengine, torch, timm and mmseg.

Each patch lives in its own module here and is installed by :func:`install`,
which ``mmsnnmlp/__init__.py`` calls. All are idempotent. Set the environment
variable ``MMSNNMLP_NO_PATCHES`` before the import to opt out: ``1`` or
``all`` installs none, a comma-separated list of names (``PATCHES``) skips
those. What each patch is for, and what is lost without it, is in the
module docstrings and the README.
"""
import os
from typing import FrozenSet, Optional

from . import (mmengine_checkpoint, mmengine_config, mmengine_fileio, mmseg_visualizer, timm_models,
               torch_allowlist)

ENV_VAR = 'MMSNNMLP_NO_PATCHES'
PATCHES = ('mmengine_checkpoint', 'mmengine_fileio', 'mmengine_config', 'torch_allowlist',
           'timm_models', 'mmseg_visualizer')


def skipped(value: Optional[str] = None) -> FrozenSet[str]:
    """The patch names ``MMSNNMLP_NO_PATCHES`` (or ``value``) opts out of."""
    value = os.environ.get(ENV_VAR, '') if value is None else value
    names = {n.strip() for n in value.split(',')} - {''}
    if names & {'1', 'all'}:
        return frozenset(PATCHES)
    if names <= {'0'}:
        return frozenset()
    unknown = sorted(names - set(PATCHES))
    if unknown:
        raise ValueError(f'{ENV_VAR}={value!r}: unknown patch name(s) {", ".join(unknown)}; '
                         f'use 1 or all, or a comma-separated list of: {", ".join(PATCHES)}')
    return frozenset(names)


def install() -> FrozenSet[str]:
    """Install every patch not opted out of; returns the names installed."""
    skip = skipped()
    if 'mmengine_checkpoint' not in skip:  # mmengine reads checkpoints with the safe loader
        mmengine_checkpoint.install()
    if 'mmengine_fileio' not in skip:  # mmengine writes local files atomically
        mmengine_fileio.install()
    if 'mmengine_config' not in skip:  # configs resolve `mmsnnmlp::...` (editable installs too)
        mmengine_config.install()
    if 'torch_allowlist' not in skip:  # torch.load(weights_only) accepts mmengine checkpoints
        torch_allowlist.install()
    if 'timm_models' not in skip:  # timm knows snnmlp_tiny/small/base once it is imported
        timm_models.install()
    if 'mmseg_visualizer' not in skip:  # mmseg's browse_dataset.py can draw class labels
        mmseg_visualizer.install()
    return frozenset(PATCHES) - skip
