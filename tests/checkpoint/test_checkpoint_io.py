"""Every checkpoint mmengine reads after `import mmsnnmlp` -- local or over
http(s), through load_from, init_detector, init_model or CheckpointLoader --
goes through the safe loader; downloads are cached; files are checked."""
import os
import os.path as osp
import pickle
import stat

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint

import mmsnnmlp  # noqa: F401  installs the safe loaders
from helpers.http_server import FolderServer
from mmsnnmlp.models import SNNMLP, CheckpointError, safe_load
from mmsnnmlp.fileio import atomic_open, remove_stale_temp_files
from helpers.unpicklers import UNPICKLERS, Payload

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = {'mmdet': osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py'),
       'mmseg': osp.join(ROOT, 'configs/toy/snnmlp-toy_upernet_toy-ade.py')}


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A server with a payload checkpoint and a genuine one; a private hub cache."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    site = tmp_path / 'site'
    site.mkdir()
    marker = tmp_path / 'pwned'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': Payload(marker)},
               site / 'evil.pth')
    model = SNNMLP(dict(embed_dims=8, depths=(1, 1, 1, 1)), drop_path_rate=0.0)
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 1}}, site / 'good.pth')
    with FolderServer(site) as server:
        yield server, marker, model
    # the payload really would run under a plain unpickler
    assert not marker.exists()
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


def test_payload_url_refused_by_checkpoint_loader(served):
    server, marker, model = served
    with pytest.raises(CheckpointError, match='Refusing to load .*evil.pth.*could run code'):
        CheckpointLoader.load_checkpoint(f'{server.url}/evil.pth')
    with pytest.raises(CheckpointError, match='could run code'):
        load_checkpoint(model, f'{server.url}/evil.pth')
    assert not marker.exists()


@pytest.mark.parametrize('api', ['mmdet.apis.init_detector', 'mmseg.apis.init_model'])
def test_payload_url_refused_by_library_apis(served, api):
    module, name = api.rsplit('.', 1)
    init = getattr(pytest.importorskip(module), name)
    server, marker, _ = served
    with pytest.raises(CheckpointError, match='could run code'):
        init(TOY[module.split('.')[0]], f'{server.url}/evil.pth', device='cpu')
    assert not marker.exists()


def test_modelzoo_schemes_use_the_safe_http_loader(served, monkeypatch):
    """torchvision:// resolves a name to a URL, then downloads through it."""
    from mmengine.runner import checkpoint as mmengine_checkpoint
    server, marker, _ = served
    monkeypatch.setattr(mmengine_checkpoint, 'get_torchvision_models',
                        lambda: {'evil': f'{server.url}/evil.pth'})
    with pytest.raises(CheckpointError, match='could run code'):
        CheckpointLoader.load_checkpoint('torchvision://evil')
    assert not marker.exists()


def test_url_download_is_cached(served, tmp_path):
    server, _, model = served
    url = f'{server.url}/good.pth'
    fresh = SNNMLP(dict(embed_dims=8, depths=(1, 1, 1, 1)))
    load_checkpoint(fresh, url)
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value)
    cached = list((tmp_path / 'torch_home/hub/checkpoints').glob('*/good.pth'))  # a folder per URL
    assert len(cached) == 1 and cached[0].is_file()
    assert safe_load(url)['meta'] == {'epoch': 1}
    CheckpointLoader.load_checkpoint(url)
    assert server.requests['/good.pth'] == 1  # downloaded once, then read from the cache


def test_failed_download_names_url_and_cache(served, tmp_path):
    server, _, _ = served
    with pytest.raises(CheckpointError, match=r'Could not download checkpoint .*/nope.pth.*place '
                                              r'it at .*torch_home/hub/checkpoints/'
                                              r'[0-9a-f]{16}/nope.pth'):
        safe_load(f'{server.url}/nope.pth')


def test_local_loader_messages(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'Checkpoint not found: .*missing.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'missing.pth'))
    with pytest.raises(FileNotFoundError, match='Checkpoint path is empty'):
        CheckpointLoader.load_checkpoint('   ')


def _flip_byte_in_tensor_data(path):
    """Bit rot: change one byte of a stored tensor (the zip entry's CRC no
    longer matches; the archive structure stays intact)."""
    import zipfile
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if '/data/' in i.filename and i.file_size > 64)
    data = bytearray(path.read_bytes())
    # the local header is 30 bytes + name + extra field before the data
    name_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], 'little')
    extra_len = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], 'little')
    at = info.header_offset + 30 + name_len + extra_len + 17
    data[at] ^= 0x40
    path.write_bytes(bytes(data))
    return info.filename


@UNPICKLERS
def test_bit_rot_is_caught(tmp_path, restricted):
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': {'w': torch.arange(100.0)}}, path)
    assert torch.equal(safe_load(str(path), restricted=restricted)['state_dict']['w'],
                       torch.arange(100.0))
    member = _flip_byte_in_tensor_data(path)
    # torch itself would load the flipped value without complaint
    assert not torch.equal(torch.load(path)['state_dict']['w'], torch.arange(100.0))
    with pytest.raises(CheckpointError, match=rf'ckpt.pth fails its integrity check \(CRC error '
                                              rf'in {member}\)'):
        safe_load(str(path), restricted=restricted)


def test_atomic_writes_keep_plain_file_modes(tmp_path):
    umask = os.umask(0o027)
    try:
        target = tmp_path / 'new.txt'
        with atomic_open(str(target)) as f:
            f.write('x')
        assert stat.S_IMODE(target.stat().st_mode) == 0o640  # 0o666 minus the umask
        target.chmod(0o604)
        with atomic_open(str(target)) as f:
            f.write('y')
        assert stat.S_IMODE(target.stat().st_mode) == 0o604  # an existing file keeps its mode
    finally:
        os.umask(umask)


def test_stale_temp_files_are_removed(tmp_path):
    (tmp_path / '.iter_4.pth.abcd1234.tmp').write_bytes(b'half')
    (tmp_path / '.last_checkpoint.x_Y9z0ab.tmp').write_text('half')
    (tmp_path / 'iter_4.pth').write_bytes(b'whole')
    (tmp_path / 'notes.tmp').write_text('mine')
    removed = remove_stale_temp_files(str(tmp_path))
    assert sorted(osp.basename(p) for p in removed) == ['.iter_4.pth.abcd1234.tmp',
                                                       '.last_checkpoint.x_Y9z0ab.tmp']
    assert sorted(os.listdir(tmp_path)) == ['iter_4.pth', 'notes.tmp']
