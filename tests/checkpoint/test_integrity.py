"""Damaged checkpoints never load as changed weights: every bit of a zip
checkpoint's headers, and of a legacy (non-zip) checkpoint carrying our
content digest, either loads the same content or raises CheckpointError."""
import contextlib
import io
import os
import pickletools
import struct
import warnings
import zipfile

import numpy as np
import pytest
import torch

from helpers.unpicklers import UNPICKLERS
from mmsnnmlp.checkpoint import CheckpointError, safe_load
from mmsnnmlp.checkpoint.integrity import (DIGEST_KEY, attach_digest, compute_digest,
                                           verify_digest)
from mmsnnmlp.engine.workdir import resume_checkpoint


def _content():
    return {'state_dict': {'w': torch.arange(6.0).reshape(2, 3),
                           'n': torch.tensor([7, -1], dtype=torch.int64)},
            'meta': {'epoch': 1, 'name': 'toy'}}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and \
            torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@contextlib.contextmanager
def _memory_cap(headroom: int = 2 << 30):
    """Cap this process's address space while damaged files load: a loader
    that lets a damaged length or index allocate gigabytes then fails with
    MemoryError here instead of taking the machine's memory."""
    resource = pytest.importorskip('resource')
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open('/proc/self/statm') as f:
        cap = int(f.read().split()[0]) * os.sysconf('SC_PAGE_SIZE') + headroom
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _flip_each_bit(path, offsets, load):
    """Flip every bit at ``offsets`` of ``path`` in turn (in place, restored
    after each load); count the loads that gave the same content and the
    refusals, and list everything else."""
    original = path.read_bytes()
    reference = load(path)
    outcomes, failures = {'same': 0, 'refused': 0}, []
    with open(path, 'r+b', buffering=0) as f, _memory_cap():
        for at in offsets:
            for bit in range(8):
                os.pwrite(f.fileno(), bytes([original[at] ^ (1 << bit)]), at)
                outcome = _load_outcome(load, path, reference)
                os.pwrite(f.fileno(), original[at:at + 1], at)
                if outcome in outcomes:
                    outcomes[outcome] += 1
                else:
                    failures.append(f'byte {at} bit {bit}: {outcome}')
    assert path.read_bytes() == original
    return outcomes, failures


def _load_outcome(load, path, reference) -> str:
    try:
        loaded = load(path)
    except CheckpointError as err:
        return 'refused' if path.name in str(err) else f'error not naming the file: {err}'
    except Exception as err:  # noqa: BLE001 - any other type is a failure
        return f'{type(err).__name__}: {err}'
    return 'same' if _same(loaded, reference) else 'loaded changed content'


def _header_offsets(data: bytes):
    """Every byte of the zip's structure: local headers (fixed fields, name,
    the extra field's tag and length), data descriptors, central-directory
    entries, the zip64 end record and locator, and the end record."""
    regions = []
    end = data.rindex(b'PK\x05\x06')
    regions.append((end, len(data)))
    if data[end - 20:end - 16] == b'PK\x06\x07':
        end64 = struct.unpack_from('<Q', data, end - 12)[0]
        regions.append((end64, end))
    archive = zipfile.ZipFile(io.BytesIO(data))
    pos = archive.start_dir
    for info in archive.infolist():
        name_len, extra_len, comment_len = struct.unpack_from('<HHH', data, pos + 28)
        regions.append((pos, pos + 46 + name_len + extra_len + comment_len))
        pos += 46 + name_len + extra_len + comment_len
        local = info.header_offset
        name_len, extra_len = struct.unpack_from('<HH', data, local + 26)
        regions.append((local, local + 30 + name_len + min(extra_len, 4)))
        if info.flag_bits & 0x08:
            after = local + 30 + name_len + extra_len + info.compress_size
            regions.append((after, after + 16))
    return sorted({at for start, stop in regions for at in range(start, stop)})


def test_zip_header_bit_flips_load_the_same_or_are_refused(tmp_path):
    path = tmp_path / 'c.pth'  # torch names the archive's folder after the file: keep it short
    torch.save(_content(), path)
    offsets = _header_offsets(path.read_bytes())
    assert len(offsets) > 500
    # the container check comes before either unpickler: use the faster one
    outcomes, failures = _flip_each_bit(path, offsets, lambda p: safe_load(str(p),
                                                                          restricted=True))
    assert not failures, f'{len(failures)} flips:\n' + '\n'.join(failures[:20])
    assert outcomes['refused'] > 0.5 * 8 * len(offsets) and outcomes['same'] > 0, outcomes


def _central_entry(data: bytes, suffix: bytes) -> int:
    pos = data.index(b'PK\x01\x02')
    while True:
        name_len, extra_len, comment_len = struct.unpack_from('<HHH', data, pos + 28)
        if data[pos + 46:pos + 46 + name_len].endswith(suffix):
            return pos
        pos += 46 + name_len + extra_len + comment_len


@UNPICKLERS
def test_directory_bit_of_a_tensor_record_is_refused(tmp_path, restricted):
    """Bit 0x10 of the external attributes (MS-DOS 'directory') of data/0's
    central-directory entry: no CRC covers it, and torch then fills the
    tensor with whatever memory held."""
    path = tmp_path / 'c.pth'
    torch.save({'state_dict': {'w': torch.arange(1000.0)}}, path)
    data = bytearray(path.read_bytes())
    data[_central_entry(data, b'/data/0') + 38] ^= 0x10
    path.write_bytes(bytes(data))
    # torch reads it without complaint (the values are whatever memory held)
    assert torch.load(path)['state_dict']['w'].shape == (1000,)
    with pytest.raises(CheckpointError, match=r"c.pth fails its integrity check \(record "
                                              r"'c/data/0' is marked as a directory\)"):
        safe_load(str(path), restricted=restricted)


def _set_in_both_headers(path, suffix: bytes, central_at: int, local_at: int, value: int):
    """Write a 16-bit field into a record's central entry and local header
    alike (so that they still agree)."""
    data = bytearray(path.read_bytes())
    central = _central_entry(data, suffix)
    local = struct.unpack_from('<I', data, central + 42)[0]
    struct.pack_into('<H', data, central + central_at, value)
    struct.pack_into('<H', data, local + local_at, value)
    path.write_bytes(bytes(data))


def test_only_stored_and_deflated_unencrypted_records_are_read(tmp_path):
    path = tmp_path / 'c.pth'
    torch.save(_content(), path)
    _set_in_both_headers(path, b'/data/0', 10, 8, 12)  # bzip2
    with pytest.raises(CheckpointError, match=r"c.pth fails its integrity check \(record "
                                              r"'c/data/0' uses compression method 12"):
        safe_load(str(path))
    torch.save(_content(), path)
    flags = struct.unpack_from('<H', path.read_bytes(),
                               _central_entry(path.read_bytes(), b'/data.pkl') + 8)[0]
    _set_in_both_headers(path, b'/data.pkl', 8, 6, flags | 0x1)
    with pytest.raises(CheckpointError, match=r"record 'c/data.pkl' is encrypted"):
        safe_load(str(path))
    # deflated records (an archive rewritten by another zip tool) load as they are
    torch.save(_content(), path)
    deflated = tmp_path / 'd.pth'
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(deflated, 'w', zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    assert _same(safe_load(str(deflated)), _content())


class _Unseekable:
    """A write-only stream: zipfile then writes data descriptors."""

    def __init__(self, f):
        self.f, self.size = f, 0

    def write(self, data):
        self.size += len(data)
        return self.f.write(data)

    def tell(self):
        return self.size

    def flush(self):
        self.f.flush()


@pytest.mark.parametrize('streamed', [False, True])
def test_zip64_records_and_data_descriptors_of_other_writers_load(tmp_path, streamed):
    path = tmp_path / 'c.pth'
    torch.save(_content(), path)
    rewritten = tmp_path / 'r.pth'
    with zipfile.ZipFile(path) as src, open(rewritten, 'wb') as raw:
        out = _Unseekable(raw) if streamed else raw
        with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED if streamed else
                             zipfile.ZIP_STORED) as dst:
            for info in src.infolist():
                with dst.open(info.filename, 'w', force_zip64=True) as f:
                    f.write(src.read(info.filename))
    assert _same(safe_load(str(rewritten)), _content())


def test_local_header_disagreeing_with_the_directory_is_named(tmp_path):
    path = tmp_path / 'c.pth'
    torch.save(_content(), path)
    data = bytearray(path.read_bytes())
    local = struct.unpack_from('<I', data, _central_entry(data, b'/data/1') + 42)[0]
    data[local + 31] ^= 0x01  # a letter of the local header's name
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"c.pth fails its integrity check \(the local "
                                              r"header of 'c/data/1' names "):
        safe_load(str(path))


# --------------------------------------------------------------------------
# Content digest
# --------------------------------------------------------------------------
def _training_like():
    from mmengine.logging import HistoryBuffer
    buf = HistoryBuffer()
    buf.update(1.5)
    checkpoint = {
        'meta': {'epoch': 2, 'iter': 10, 'seed': np.int64(3), 'lr': 0.1, 'flag': True,
                 'cfg': 'model = dict()', 'none': None, 'pair': (1, 2.5)},
        'state_dict': {'w': torch.randn(3, 4), 'h': torch.ones(2, dtype=torch.bfloat16),
                       't': torch.arange(12.0).reshape(3, 4).t()},
        'optimizer': {'state': {0: {'step': torch.tensor(3.0)}},
                      'param_groups': [{'lr': 0.1, 'params': [0]}]},
        'message_hub': {'log_scalars': {'loss': buf}, 'runtime_info': {'x': np.float32(2.0)}},
    }
    return checkpoint


@pytest.mark.parametrize('legacy', [False, True])
@UNPICKLERS
def test_digest_survives_a_save_and_load(tmp_path, restricted, legacy):
    checkpoint = attach_digest(_training_like())
    assert set(checkpoint['meta'][DIGEST_KEY]['sha256']) == set(checkpoint)
    checkpoint['rng_state'] = torch.arange(3)  # added after the digest: not covered
    path = tmp_path / 'c.pth'
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # legacy loads warn about TypedStorage
        loaded = safe_load(str(path), restricted=restricted)
    assert verify_digest(loaded, str(path))
    assert compute_digest(loaded, list(_training_like())) == \
        checkpoint['meta'][DIGEST_KEY]['sha256']
    attach_digest(loaded, keys=['rng_state'])  # a hook adding an entry adds its digest
    assert list(loaded['meta'][DIGEST_KEY]['sha256']) == list(checkpoint)
    loaded['rng_state'][0] = 7
    with pytest.raises(CheckpointError, match="fails its content digest in 'rng_state'"):
        verify_digest(loaded, 'x')


def test_changed_content_fails_its_digest(tmp_path):
    checkpoint = attach_digest(_content())
    checkpoint['state_dict']['w'][1, 2] = 5.5  # as a flip in the data would
    path = tmp_path / 'c.pth'
    torch.save(checkpoint, path)  # the zip's CRCs are right: only the digest can tell
    with pytest.raises(CheckpointError, match="c.pth fails its content digest in 'state_dict'"):
        safe_load(str(path))
    for damage in ({'sha256': 1}, {'sha256': {'nope': 'ab'}}, {'sha256': {}}, [],
                   {'sha256': {'meta': 'ab'}, 'keys': []}):
        checkpoint = _content()
        checkpoint['meta'][DIGEST_KEY] = damage
        torch.save(checkpoint, path)
        with pytest.raises(CheckpointError, match='c.pth carries a damaged content digest'):
            safe_load(str(path))


def test_files_without_a_digest_load_as_before(tmp_path):
    path = tmp_path / 'c.pth'
    torch.save(_content(), path, _use_new_zipfile_serialization=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert _same(safe_load(str(path)), _content())
    assert verify_digest(_content(), 'x') is False


def _legacy_offsets(data: bytes, pickles: bool = True):
    """Each byte of the tensor data (the file's tail) and every third byte
    of the pickles before it (a few seconds of loads)."""
    tail = 6 * 4 + 8 + 2 * 8 + 8  # two storages: 8-byte counts and their bytes
    head = range(0, len(data) - tail, 3) if pickles else ()
    return sorted(set(head) | set(range(len(data) - tail, len(data))))


@pytest.mark.parametrize('digest', [True, False])
def test_legacy_bit_flips_are_caught_with_a_digest(tmp_path, digest):
    path = tmp_path / 'c.pth'
    content = attach_digest(_content()) if digest else _content()
    torch.save(content, path, _use_new_zipfile_serialization=False)
    offsets = _legacy_offsets(path.read_bytes(), pickles=digest)
    record = content['meta'].get(DIGEST_KEY)

    def load(p):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            loaded = safe_load(str(p), restricted=True)
        # one flip in the digest's own name leaves the content intact
        if isinstance(loaded, dict) and isinstance(loaded.get('meta'), dict):
            loaded['meta'] = {k: v for k, v in loaded['meta'].items() if v != record}
        return loaded

    outcomes, failures = _flip_each_bit(path, offsets, load)
    if digest:
        assert not failures, f'{len(failures)} flips:\n' + '\n'.join(failures[:20])
        assert outcomes['refused'] > 0.5 * 8 * len(offsets), outcomes
    else:  # without one, flips in the tensor data load changed weights, as torch's own load
        assert any('changed content' in f for f in failures)
        assert not [f for f in failures if 'changed content' not in f], failures[:5]


def test_damaged_legacy_pickles_are_refused_before_unpickling(tmp_path):
    path = tmp_path / 'c.pth'
    torch.save(_content(), path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    stream = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol, system info
        pickletools.dis(stream, out=io.StringIO())
    at = next(pos for op, _, pos in pickletools.genops(stream) if op.name == 'BINPUT')
    # memo index ~1.5e9 (LONG_BINPUT): the C unpickler would allocate ~12 GB for its memo
    path.write_bytes(data[:at] + b'r' + struct.pack('<I', 1_483_935_601) + data[at + 2:])
    with _memory_cap(), pytest.raises(CheckpointError,
                                      match=r'c.pth \(damaged pickle starting at byte \d+: '):
        safe_load(str(path), restricted=True)


def test_resume_skips_a_checkpoint_that_fails_its_digest(tmp_path):
    def save(step, damage=False):
        checkpoint = attach_digest({'meta': {'epoch': 0, 'iter': step}, 'message_hub': {},
                                    'state_dict': {'w': torch.ones(2)}, 'optimizer': {}})
        if damage:
            checkpoint['state_dict']['w'][0] = 2.0
        torch.save(checkpoint, tmp_path / f'iter_{step}.pth')
        return str(tmp_path / f'iter_{step}.pth')

    good = save(1)
    bad = save(2, damage=True)
    (tmp_path / 'last_checkpoint').write_text(bad)
    messages = []

    class Logger:
        def warning(self, message):
            messages.append(message)

    assert resume_checkpoint(str(tmp_path), Logger()) == good
    assert 'fails its content digest' in messages[0]


def test_digest_is_not_fooled_by_shared_or_strided_tensors():
    base = torch.arange(12.0)
    a = {'meta': {}, 'x': base.view(3, 4), 'y': base.view(3, 4).t(), 'z': base[::2]}
    b = {'meta': {}, 'x': base.clone().view(3, 4), 'y': base.clone().view(3, 4).t().contiguous(),
         'z': base[::2].clone()}
    assert compute_digest(a) == compute_digest(b)
    b['z'][0] = 1.0
    assert compute_digest(a)['z'] != compute_digest(b)['z']
    # the same bytes under another dtype or shape differ
    assert compute_digest({'x': torch.zeros(4)}) != compute_digest({'x': torch.zeros(2, 2)})
    assert compute_digest({'x': torch.zeros(4)}) != \
        compute_digest({'x': torch.zeros(4, dtype=torch.int32)})


def test_our_hooks_save_checkpoints_with_a_digest(tmp_path):
    """A real (tiny) mmengine run with our checkpoint and RNG hooks: the
    saved file carries a digest covering every top-level key, rng_state
    included, whichever hook runs first."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    import mmsnnmlp.engine  # noqa: F401  registers the hooks

    class Model(BaseModel):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 1)

        def forward(self, inputs, mode='tensor'):
            out = self.fc(inputs)
            return {'loss': out.pow(2).mean()} if mode == 'loss' else out

    runner = Runner(
        model=Model(), work_dir=str(tmp_path), experiment_name=f'digest-{tmp_path.name}',
        train_dataloader=dict(dataset=[dict(inputs=torch.full((2,), float(i))) for i in range(4)],
                              batch_size=2, sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=2),
        default_hooks=dict(checkpoint=dict(type='SafeCheckpointHook', interval=2,
                                           by_epoch=False)),
        custom_hooks=[dict(type='RNGStateHook')])
    runner.train()
    path = str(tmp_path / 'iter_2.pth')
    checkpoint = safe_load(path)
    assert verify_digest(checkpoint, path)
    assert set(checkpoint['meta'][DIGEST_KEY]['sha256']) == set(checkpoint) >= {
        'meta', 'state_dict', 'optimizer', 'message_hub', 'rng_state'}
