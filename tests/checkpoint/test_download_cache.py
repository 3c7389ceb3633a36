"""The download cache is keyed by the whole URL: two URLs ending in one file
name (other folders, other query strings) each get their own file."""
import os.path as osp

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

import mmsnnmlp  # noqa: F401  installs the safe loaders
from helpers.http_server import FolderServer
from mmsnnmlp.checkpoint import cached_path, download_to_cache, safe_load


def _weights(value):
    return {'state_dict': {'w': torch.full((3,), float(value))}}


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    root = tmp_path / 'site'
    for folder, value in (('a', 1), ('b', 2)):
        (root / folder).mkdir(parents=True)
        torch.save(_weights(value), root / folder / 'bb.pth')
    with FolderServer(root) as server:
        yield server, root


def _w(checkpoint):
    return checkpoint['state_dict']['w'][0].item()


def test_two_urls_with_one_file_name_get_their_own_files(site):
    server, _ = site
    first, second = f'{server.url}/a/bb.pth', f'{server.url}/b/bb.pth'
    assert _w(safe_load(first)) == 1
    assert _w(safe_load(second)) == 2
    assert _w(CheckpointLoader.load_checkpoint(first)) == 1  # mmengine's http scheme too
    assert _w(CheckpointLoader.load_checkpoint(second)) == 2
    assert server.requests['/a/bb.pth'] == 1 and server.requests['/b/bb.pth'] == 1
    # kept under their own, readable, file name, a folder per URL
    assert osp.basename(cached_path(first)) == osp.basename(cached_path(second)) == 'bb.pth'
    assert osp.dirname(cached_path(first)) != osp.dirname(cached_path(second))


def test_a_query_string_is_part_of_the_key(site):
    server, root = site
    url = f'{server.url}/a/bb.pth'
    assert _w(safe_load(url)) == 1
    torch.save(_weights(3), root / 'a' / 'bb.pth')  # a new release under the same name
    assert _w(safe_load(f'{url}?v=2')) == 3
    assert _w(safe_load(url)) == 1  # the first URL still reads its own cached file
    assert server.requests['/a/bb.pth'] == 1 and server.requests['/a/bb.pth?v=2'] == 1


def test_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    url = 'https://example.org/releases/download/v1/snnmlp_t.pth?raw=1'
    path = cached_path(url)
    hub = str(tmp_path / 'torch_home' / 'hub' / 'checkpoints')
    assert osp.dirname(osp.dirname(path)) == hub
    assert len(osp.basename(osp.dirname(path))) == 16
    assert osp.basename(path) == 'snnmlp_t.pth'
    assert cached_path(url, str(tmp_path / 'mine')).startswith(str(tmp_path / 'mine') + osp.sep)
    assert osp.basename(cached_path('https://example.org/a%20b.pth')) == 'a b.pth'
    assert osp.basename(cached_path('https://example.org/')) == 'checkpoint'


def test_a_cached_file_is_not_downloaded_again(site):
    server, _ = site
    url = f'{server.url}/b/bb.pth'
    path = download_to_cache(url)
    assert download_to_cache(url) == path
    assert server.requests['/b/bb.pth'] == 1
