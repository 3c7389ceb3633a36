"""Every name mmengine resolves to a checkpoint file -- open-mmlab:// (a URL
or a file mapped by $MMENGINE_HOME/open_mmlab.json), torchvision://,
modelzoo://, mmcls://, pavi://, s3:// -- reaches the safe loader, with
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 too (which turns torch.load's default
into a plain unpickler)."""
import json
import sys
import types

import pytest
import torch
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

import mmsnnmlp  # noqa: F401  installs the safe loaders
from helpers.http_server import FolderServer
from helpers.unpicklers import UNPICKLERS, Payload
from mmsnnmlp.checkpoint import CheckpointError, safe_load


@pytest.fixture
def files(tmp_path, monkeypatch):
    """$MMENGINE_HOME with a payload and a genuine checkpoint, mapped by
    open_mmlab.json; a private hub cache; the environment variable set."""
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    home = tmp_path / 'mmengine_home'
    (home / 'zoo').mkdir(parents=True)
    monkeypatch.setenv('MMENGINE_HOME', str(home))
    marker = tmp_path / 'pwned'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': Payload(marker)},
               home / 'zoo' / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}}, home / 'zoo' / 'good.pth')
    (home / 'open_mmlab.json').write_text(json.dumps({'evil': 'zoo/evil.pth',
                                                      'good': 'zoo/good.pth'}))
    yield home, marker
    assert not marker.exists()


def _refused(name):
    with pytest.raises(CheckpointError, match='could run code'):
        CheckpointLoader.load_checkpoint(name)


@pytest.mark.parametrize('prefix', ['open-mmlab://', 'openmmlab://'])
def test_open_mmlab_local_mapping_uses_the_safe_loader(files, prefix):
    _refused(f'{prefix}evil')
    good = CheckpointLoader.load_checkpoint(f'{prefix}good')
    assert torch.equal(good['state_dict']['w'], torch.ones(2))
    with pytest.raises(FileNotFoundError, match='can not be found'):
        (files[0] / 'zoo' / 'good.pth').unlink()
        CheckpointLoader.load_checkpoint(f'{prefix}good')


@pytest.mark.parametrize('scheme', ['open-mmlab://', 'torchvision://', 'modelzoo://', 'mmcls://'])
def test_names_resolving_to_urls_use_the_safe_http_loader(files, scheme, monkeypatch):
    home, _ = files
    with FolderServer(home / 'zoo') as server:
        table = {'evil': f'{server.url}/evil.pth'}
        if scheme == 'open-mmlab://':
            (home / 'open_mmlab.json').write_text(json.dumps(table))
        elif scheme == 'mmcls://':
            monkeypatch.setattr(mmengine_checkpoint, 'get_mmcls_models', lambda: table)
        else:
            monkeypatch.setattr(mmengine_checkpoint, 'get_torchvision_models', lambda: table)
        _refused(f'{scheme}evil')
        assert server.requests['/evil.pth'] == 1


def test_pavi_downloads_use_the_safe_loader(files, monkeypatch):
    home, _ = files

    class Model:
        name = 'evil.pth'

        def download(self, path):
            with open(path, 'wb') as f:
                f.write((home / 'zoo' / 'evil.pth').read_bytes())

    pavi = types.ModuleType('pavi')
    pavi.modelcloud = types.SimpleNamespace(get=lambda name: Model())
    monkeypatch.setitem(sys.modules, 'pavi', pavi)
    with pytest.raises(CheckpointError, match=r'Refusing to load pavi://team/evil \(read from '):
        CheckpointLoader.load_checkpoint('pavi://team/evil')


def test_s3_downloads_use_the_safe_loader(files, monkeypatch):
    home, _ = files
    import mmengine.fileio
    backend = types.SimpleNamespace(get=lambda name: (home / 'zoo' / 'evil.pth').read_bytes())
    monkeypatch.setattr(mmengine.fileio, 'get_file_backend', lambda *a, **k: backend)
    with pytest.raises(CheckpointError, match=r'Refusing to load s3://bucket/evil.pth'):
        CheckpointLoader.load_checkpoint('s3://bucket/evil.pth')


@UNPICKLERS
def test_safe_load_ignores_the_environment_variables(files, restricted, monkeypatch):
    home, _ = files
    with pytest.raises(CheckpointError, match='could run code'):
        safe_load(str(home / 'zoo' / 'evil.pth'), restricted=restricted)
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
    monkeypatch.setenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', '1')  # refuses any pickle_module
    if restricted and not mmsnnmlp.checkpoint.TORCH_ALLOWLIST:
        pytest.skip('torch < 2.6 has no allowlist to fall back on')
    good = safe_load(str(home / 'zoo' / 'good.pth'), restricted=restricted)
    assert torch.equal(good['state_dict']['w'], torch.ones(2))
