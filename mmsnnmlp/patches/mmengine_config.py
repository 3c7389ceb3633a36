"""Patch ``mmengine_config``: configs can inherit ours as
``mmsnnmlp::det/...py`` / ``mmsnnmlp::seg/...py``.

mmengine's Config only resolves the packages in its ``MODULE2PACKAGE`` table,
and finds a package's files from its distribution's location, which for
editable (PEP 660) installs is site-packages, not the source.
"""
import importlib.util
import os.path as osp


def install() -> None:
    """Add ``mmsnnmlp`` to mmengine's package table and give
    ``get_installed_path`` an import-system fallback (idempotent)."""
    from mmengine.config import config as mmengine_config
    from mmengine.config import utils as config_utils
    config_utils.MODULE2PACKAGE['mmsnnmlp'] = 'mmsnnmlp'
    original = mmengine_config.get_installed_path
    if getattr(original, 'mmsnnmlp_fallback', False):
        return

    def get_installed_path(package: str) -> str:
        path = original(package)
        if not osp.isdir(path):  # editable install: ask the import system
            spec = importlib.util.find_spec(package)
            if spec is not None and spec.origin:
                return osp.dirname(spec.origin)
        return path

    get_installed_path.mmsnnmlp_fallback = True
    mmengine_config.get_installed_path = get_installed_path
