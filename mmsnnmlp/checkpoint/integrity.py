"""Integrity of checkpoint files: the zip container checked field by field,
and a content digest that checkpoints we write carry.

Zip: torch's reader (miniz) trusts fields that a CRC does not cover. One
flipped bit in a central-directory entry can, for example, mark a tensor's
record as a directory, and torch then hands back uninitialised memory. So
before torch reads a zip checkpoint, :func:`check_zip` parses the archive
itself, strictly: the end records agree with each other and with the central
directory, every local header agrees with its central-directory entry (name,
method, flags, CRC, sizes; the last two from the data descriptor after the
data when the header defers them there, as torch's writer does), records are
stored or deflated, unencrypted, not directories, and do not overlap, and
every record's data matches its CRC and size.

Digest: the legacy (non-zip) format has no checksums at all. Checkpoints we
write carry ``meta['mmsnnmlp_digest'] = {'sha256': {top-level key: hex}}``,
a SHA-256 per top-level entry over its loaded content (every tensor's
dtype, shape and bytes, every number and string, and the structure holding
them), which :func:`verify_digest` recomputes on load. One per entry, so
that a hook adding an entry after the digest hashes only that entry.
It lives in the checkpoint's own ``meta`` rather than in a sidecar file: it
is written atomically with the file and travels with it when copied or
uploaded, where a sidecar can be lost or left describing an older file.
"""
import hashlib
import mmap
import pickletools
import struct
import zlib
from collections.abc import Mapping
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from .errors import CheckpointError

__all__ = ['check_file', 'check_zip', 'check_legacy', 'compute_digest', 'attach_digest',
           'verify_digest', 'DIGEST_KEY']

DIGEST_KEY = 'mmsnnmlp_digest'

_LOCAL = struct.Struct('<4sHHHHHIIIHH')  # local file header, 30 bytes
_CENTRAL = struct.Struct('<4sHHHHHHIIIHHHHHII')  # central-directory entry, 46 bytes
_END = struct.Struct('<4sHHHHIIH')  # end of central directory, 22 bytes
_END64 = struct.Struct('<4sQHHIIQQQQ')  # zip64 end of central directory, 56 bytes
_LOCATOR64 = struct.Struct('<4sIQI')  # zip64 end locator, 20 bytes
_U16, _U32 = 0xFFFF, 0xFFFFFFFF
_ENCRYPTED = 0x0001 | 0x0040 | 0x2000  # encrypted, strong encryption, masked directory
_DATA_DESCRIPTOR = 0x0008
_DOS_DIRECTORY = 0x10
_CHUNK = 1 << 20


class _Corrupt(Exception):
    """What is wrong with the archive (becomes the CheckpointError's reason)."""


class _Truncated(_Corrupt):
    """The end of the archive is missing."""


def check_file(path: str, source: str) -> None:
    """Refuse empty, foreign, truncated and bit-rotted files before torch
    reads them (:class:`CheckpointError` naming ``source``)."""
    with open(path, 'rb') as f:
        head = f.read(4)
    if not head:
        raise CheckpointError(f'Checkpoint file is empty: {source}')
    if head == b'PK\x03\x04':
        check_zip(path, source)
    elif head[:1] == b'\x80':
        check_legacy(path, source)
    else:
        raise CheckpointError('Not a PyTorch checkpoint (neither a zip archive nor a pickle): '
                              f'{source}')


# the legacy format: magic number, protocol, system info, the object, storage keys
_LEGACY_PICKLES = 5
_MEMO_PUTS = {'PUT', 'BINPUT', 'LONG_BINPUT'}
_MEMO_GETS = {'GET', 'BINGET', 'LONG_BINGET'}


def check_legacy(path: str, source: str) -> None:
    """Walk the pickles of a legacy (non-zip) checkpoint without running
    them (see :func:`_walk_pickle`): a damaged length or memo index can make
    an unpickler allocate gigabytes (the C unpickler sizes its memo by the
    largest index) before it fails, and a damaged stack operation can
    silently return part of the object."""
    with open(path, 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for _ in range(_LEGACY_PICKLES):
            start = data.tell()
            if start == len(data):
                return
            try:
                _walk_pickle(data)
            except Exception as err:  # pickletools fails in several ways on damage
                raise CheckpointError(f'Checkpoint is truncated or corrupt: {source} (damaged '
                                      f'pickle starting at byte {start}: {err})') from None


def _walk_pickle(data) -> None:
    """One pass over a pickle's opcodes, checking what :func:`pickletools.dis`
    checks, and memo order: each length fits in the file, every MARK-popping
    opcode finds a MARK, no opcode pops more than the stack holds, STOP
    leaves exactly one object, and memo indices are stored in order (as
    picklers write them) before they are read."""
    mark = pickletools.markobject
    stack, stored, count = [], set(), 0  # the stack as flags: True for a MARK
    for op, arg, pos in pickletools.genops(data):
        count += 1
        before, after = op.stack_before, op.stack_after
        pop = len(before)
        if mark in before or (op.name == 'POP' and stack and stack[-1]):
            if True not in stack:
                raise ValueError(f'{op.name} at byte {pos} finds no MARK')
            while not stack.pop():
                pass
            pop = before.index(mark) if mark in before else 0
        if op.name in _MEMO_PUTS or op.name == 'MEMOIZE':
            index = len(stored) if op.name == 'MEMOIZE' else int(arg)
            if index > count or index in stored or not stack or stack[-1]:
                raise ValueError(f'{op.name} {index} at byte {pos} is out of order')
            stored.add(index)
        elif op.name in _MEMO_GETS and int(arg) not in stored:
            raise ValueError(f'memo index {arg} at byte {pos} was never stored')
        if pop > len(stack) or any(stack[len(stack) - pop:]):
            raise ValueError(f'{op.name} at byte {pos} pops more than the stack holds')
        del stack[len(stack) - pop:]
        stack.extend(item is mark for item in after)
    if stack:
        raise ValueError('the pickle leaves more than one object')


def check_zip(path: str, source: str) -> None:
    """Check a zip checkpoint's structure and every record's data (see the
    module docstring); CheckpointError naming ``source`` and the problem."""
    try:
        with open(path, 'rb') as f:
            entries, cd_offset = _read_directory(f)
            _check_records(f, entries, cd_offset)
            for entry in entries:
                _check_data(f, entry)
    except _Truncated as err:
        raise CheckpointError(f'Checkpoint is truncated or corrupt (incomplete zip archive): '
                              f'{source} ({err})') from None
    except _Corrupt as err:
        raise CheckpointError(f'Checkpoint is corrupt: {source} fails its integrity check '
                              f'({err}); download or copy it again') from None
    except (OSError, MemoryError, OverflowError, ValueError, zlib.error) as err:
        raise CheckpointError(f'Checkpoint is corrupt: {source} fails its integrity check '
                              f'({type(err).__name__}: {err}); download or copy it '
                              'again') from None


class _Entry:
    __slots__ = ('name', 'flags', 'method', 'crc', 'csize', 'usize', 'offset', 'data_start',
                 'end')

    def __str__(self):
        return repr(self.name.decode('utf-8', 'replace'))


def _read_exact(f, offset: int, size: int, what: str) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise _Corrupt(f'{what} at byte {offset} runs past the end of the file')
    return data


def _read_directory(f):
    """Central-directory entries (checked against the end records), and
    where the central directory starts."""
    f.seek(0, 2)
    size = f.tell()
    tail_start = max(0, size - _END.size - _U16)
    tail = _read_exact(f, tail_start, size - tail_start, 'end of archive')
    # the end record closes the file (its comment, if any, runs to the end)
    end_at = None
    pos = tail.rfind(b'PK\x05\x06')
    while pos >= 0:
        if pos + _END.size <= len(tail) and \
                pos + _END.size + _END.unpack_from(tail, pos)[7] == len(tail):
            end_at = tail_start + pos
            break
        pos = tail.rfind(b'PK\x05\x06', 0, pos)
    if end_at is None:
        raise _Truncated('no end-of-central-directory record')
    _, disk, cd_disk, count_here, count, cd_size, cd_offset, _ = \
        _END.unpack_from(tail, end_at - tail_start)
    directory_end = end_at
    if end_at >= _LOCATOR64.size and \
            _read_exact(f, end_at - _LOCATOR64.size, 4, 'zip64 locator') == b'PK\x06\x07':
        _, end64_disk, end64_at, disks = _LOCATOR64.unpack(
            _read_exact(f, end_at - _LOCATOR64.size, _LOCATOR64.size, 'zip64 locator'))
        if end64_disk != 0 or disks != 1:
            raise _Corrupt('the zip64 locator names another disk')
        (sig, record_size, _, _, disk64, cd_disk64, count_here64, count64, cd_size64,
         cd_offset64) = _END64.unpack(_read_exact(f, end64_at, _END64.size, 'zip64 end record'))
        if sig != b'PK\x06\x06':
            raise _Corrupt('the zip64 locator does not point at a zip64 end record')
        if end64_at + 12 + record_size != end_at - _LOCATOR64.size:
            raise _Corrupt('the zip64 end record and its locator disagree on its size')
        for name, short, full, placeholder in (
                ('disk number', disk, disk64, _U16), ('directory disk', cd_disk, cd_disk64, _U16),
                ('entries on this disk', count_here, count_here64, _U16),
                ('entry count', count, count64, _U16),
                ('central-directory size', cd_size, cd_size64, _U32),
                ('central-directory offset', cd_offset, cd_offset64, _U32)):
            if short not in (full, placeholder):
                raise _Corrupt(f'the end records disagree on the {name} ({short} vs {full})')
        disk, cd_disk, count_here, count, cd_size, cd_offset = \
            disk64, cd_disk64, count_here64, count64, cd_size64, cd_offset64
        directory_end = end64_at
    if disk != 0 or cd_disk != 0 or count_here != count:
        raise _Corrupt('the archive claims to span several disks')
    if cd_offset + cd_size != directory_end:
        raise _Corrupt(f'the central directory ({cd_size} bytes at {cd_offset}) does not end '
                       f'where the end record starts ({directory_end})')
    directory = _read_exact(f, cd_offset, cd_size, 'central directory')
    entries, names, pos = [], set(), 0
    while pos < len(directory):
        entry, pos = _parse_central(directory, pos, len(entries))
        entries.append(entry)
        if entries[-1].name in names:
            raise _Corrupt(f'two records are named {entries[-1]}')
        names.add(entries[-1].name)
    if len(entries) != count:
        raise _Corrupt(f'the end record counts {count} entries, the central directory holds '
                       f'{len(entries)}')
    return entries, cd_offset


def _parse_central(directory: bytes, pos: int, index: int):
    """One central-directory entry and where the next one starts."""
    if pos + _CENTRAL.size > len(directory):
        raise _Corrupt(f'central-directory entry {index} runs past the directory')
    (sig, _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len, comment_len,
     disk, _, external, offset) = _CENTRAL.unpack_from(directory, pos)
    if sig != b'PK\x01\x02':
        raise _Corrupt(f'central-directory entry {index} has no valid signature')
    entry = _Entry()
    start = pos + _CENTRAL.size
    end = start + name_len + extra_len + comment_len
    if end > len(directory):
        raise _Corrupt(f'central-directory entry {index} runs past the directory')
    entry.name = directory[start:start + name_len]
    extra = directory[start + name_len:start + name_len + extra_len]
    usize, csize, offset, disk = _zip64_values(extra, (usize, csize, offset, disk), entry)
    if not entry.name:
        raise _Corrupt(f'central-directory entry {index} has no name')
    if disk != 0:
        raise _Corrupt(f'record {entry} is on another disk')
    if flags & _ENCRYPTED:
        raise _Corrupt(f'record {entry} is encrypted')
    if method not in (0, 8):
        raise _Corrupt(f'record {entry} uses compression method {method} (only stored and '
                       'deflated records are read)')
    if method == 0 and csize != usize:
        raise _Corrupt(f'stored record {entry} has a compressed size ({csize}) unlike its size '
                       f'({usize})')
    # miniz reads a record marked as a directory as empty, leaving the tensor unfilled
    if entry.name.endswith(b'/') or external & _DOS_DIRECTORY:
        raise _Corrupt(f'record {entry} is marked as a directory')
    entry.flags, entry.method, entry.crc, entry.csize, entry.usize, entry.offset = \
        flags, method, crc, csize, usize, offset
    return entry, end


def _zip64_values(extra: bytes, values, entry, strict: bool = True):
    """Replace the placeholder values (0xFFFF...) by those of the zip64 extra
    field, in its order: size, compressed size, offset, disk."""
    fields, pos = {}, 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from('<HH', extra, pos)
        if pos + 4 + length > len(extra):
            break
        fields.setdefault(tag, extra[pos + 4:pos + 4 + length])
        pos += 4 + length
    if strict and pos != len(extra):
        raise _Corrupt(f'the extra field of record {entry} is malformed')
    out, data = [], fields.get(0x0001, b'')
    for value, placeholder, width in zip(values, (_U32, _U32, _U32, _U16), (8, 8, 8, 4)):
        if value == placeholder:
            if len(data) < width:
                raise _Corrupt(f'record {entry} lacks the zip64 value of a field')
            value, data = int.from_bytes(data[:width], 'little'), data[width:]
        out.append(value)
    return out


def _check_records(f, entries: List[_Entry], cd_offset: int) -> None:
    """Each local header agrees with its central-directory entry, and the
    records do not overlap and lie before the central directory."""
    for entry in entries:
        (sig, _, flags, method, _, _, crc, csize, usize, name_len,
         extra_len) = _LOCAL.unpack(_read_exact(f, entry.offset, _LOCAL.size,
                                                f'local header of {entry}'))
        if sig != b'PK\x03\x04':
            raise _Corrupt(f'the central directory points record {entry} at byte '
                           f'{entry.offset}, where no local header starts')
        name = _read_exact(f, entry.offset + _LOCAL.size, name_len, f'name of {entry}')
        extra = _read_exact(f, entry.offset + _LOCAL.size + name_len, extra_len,
                            f'extra field of {entry}')
        if name != entry.name:
            raise _Corrupt(f'the local header of {entry} names {name!r}')
        _agree(entry, 'flags', flags, entry.flags)
        _agree(entry, 'compression method', method, entry.method)
        entry.data_start = entry.offset + _LOCAL.size + name_len + extra_len
        end = entry.data_start + entry.csize
        if flags & _DATA_DESCRIPTOR:
            # the values follow the data (what the header holds then varies
            # by writer: zeros, placeholders; readers use the directory's)
            end = _check_descriptor(f, entry, end)
        else:
            _check_local_values(entry, crc, csize, usize, extra)
        entry.end = end
    previous_end, previous = 0, None
    for entry in sorted(entries, key=lambda e: e.offset):
        if entry.offset < previous_end:
            raise _Corrupt(f'records {previous} and {entry} overlap')
        previous_end, previous = entry.end, entry
    if previous_end > cd_offset:
        raise _Corrupt(f'record {previous} runs into the central directory')


def _check_local_values(entry, crc, csize, usize, extra) -> None:
    usize, csize = _zip64_values(extra, (usize, csize, 0, 0), entry, strict=False)[:2]
    _agree(entry, 'CRC', crc, entry.crc)
    _agree(entry, 'compressed size', csize, entry.csize)
    _agree(entry, 'size', usize, entry.usize)


def _agree(entry, what: str, local: int, central: int) -> None:
    if local != central:
        raise _Corrupt(f'the local header of {entry} disagrees with the central directory on '
                       f'the {what} ({local} vs {central})')


def _check_descriptor(f, entry, at: int) -> int:
    """The data descriptor after a record's data (signature optional, sizes
    of 4 or 8 bytes) holds the central directory's values; returns its end."""
    _read_exact(f, at, 4, f'data descriptor of {entry}')
    f.seek(at)
    data = f.read(24)
    skip = 4 if data[:4] == b'PK\x07\x08' else 0
    for width in (4, 8):
        size = skip + 4 + 2 * width
        if len(data) >= size:
            crc = int.from_bytes(data[skip:skip + 4], 'little')
            csize = int.from_bytes(data[skip + 4:skip + 4 + width], 'little')
            usize = int.from_bytes(data[skip + 4 + width:size], 'little')
            if (crc, csize, usize) == (entry.crc, entry.csize, entry.usize):
                return at + size
    raise _Corrupt(f'the data descriptor of {entry} disagrees with the central directory')


def _check_data(f, entry: _Entry) -> None:
    """The record's data decompresses to exactly its size and CRC."""
    f.seek(entry.data_start)
    left, size, crc = entry.csize, 0, 0
    inflate = zlib.decompressobj(-15) if entry.method == 8 else None
    while left:
        chunk = f.read(min(left, _CHUNK))
        if not chunk:
            raise _Corrupt(f'the data of {entry} runs past the end of the file')
        left -= len(chunk)
        if inflate is not None:
            chunk = inflate.decompress(chunk, entry.usize - size + 1)
            if inflate.unconsumed_tail:
                raise _Corrupt(f'record {entry} inflates to more than its size')
        size += len(chunk)
        crc = zlib.crc32(chunk, crc)
    if inflate is not None:
        rest = inflate.flush()
        size += len(rest)
        crc = zlib.crc32(rest, crc)
        if not inflate.eof or inflate.unused_data:
            raise _Corrupt(f'the compressed data of {entry} does not end where its size says')
    if size != entry.usize:
        raise _Corrupt(f'record {entry} holds {size} bytes, not {entry.usize}')
    if crc != entry.crc:
        raise _Corrupt(f'CRC error in {entry.name.decode("utf-8", "replace")}')


# --------------------------------------------------------------------------
# Content digest
# --------------------------------------------------------------------------
def _feed(h, tag: bytes, data: bytes = b'') -> None:
    h.update(tag + len(data).to_bytes(8, 'little') + data)


def _tensor_bytes(t: torch.Tensor):
    t = t.detach()
    if t.is_quantized:
        t = t.int_repr()
    if t.layout != torch.strided:
        t = t.to_dense()
    if t.is_meta:
        return b''
    t = t.resolve_conj().resolve_neg().cpu().contiguous().reshape(-1)
    return t.view(torch.uint8).numpy() if t.numel() else b''


def _digest_value(h, value: Any, stack: set) -> None:
    """Feed ``value`` to ``h`` as tagged, length-prefixed records; the same
    content gives the same bytes after a save and load round trip."""
    if isinstance(value, torch.Tensor):
        _feed(h, b'X', f'{value.dtype}{tuple(value.shape)}'.encode())
        data = _tensor_bytes(value)  # uint8 array: hashed without a copy
        h.update(b'x' + len(data).to_bytes(8, 'little'))
        h.update(data)
    elif isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            _feed(h, b'N', str(value.shape).encode())
            _digest_value(h, value.tolist(), stack)
        else:
            _feed(h, b'N', f'{value.dtype.str}{value.shape}'.encode())
            _feed(h, b'n', np.ascontiguousarray(value).tobytes())
    elif isinstance(value, np.generic):
        _feed(h, b'G', value.dtype.str.encode() + b':' + value.tobytes())
    elif value is None or isinstance(value, (bool, int, str, bytes, bytearray)):
        tag = {type(None): b'z', bool: b'b', str: b's', bytes: b'y', bytearray: b'y'}.get(
            type(value), b'i')
        data = value.encode('utf-8', 'surrogatepass') if isinstance(value, str) else \
            bytes(value) if isinstance(value, (bytes, bytearray)) else str(value).encode()
        _feed(h, tag, data)
    elif isinstance(value, float):
        _feed(h, b'f', struct.pack('<d', value))
    elif isinstance(value, complex):
        _feed(h, b'c', struct.pack('<dd', value.real, value.imag))
    elif isinstance(value, (torch.dtype, torch.device, slice)):
        _feed(h, b'r', repr(value).encode())
    elif id(value) in stack:  # a cycle: mark it, do not follow it
        _feed(h, b'@')
    elif isinstance(value, Mapping):
        stack.add(id(value))
        _feed(h, b'D', str(len(value)).encode())
        for key, item in value.items():
            _digest_value(h, key, stack)
            _digest_value(h, item, stack)
        stack.discard(id(value))
    elif isinstance(value, (list, tuple)):
        stack.add(id(value))
        _feed(h, b'L' if isinstance(value, list) else b'T', str(len(value)).encode())
        for item in value:
            _digest_value(h, item, stack)
        stack.discard(id(value))
    elif isinstance(value, (set, frozenset)):
        parts = []
        for item in value:
            sub = hashlib.sha256()
            _digest_value(sub, item, stack)
            parts.append(sub.digest())
        _feed(h, b'S', b''.join(sorted(parts)))
    else:
        # other objects (say, mmengine's HistoryBuffer): type and attributes
        cls = type(value)
        _feed(h, b'O', f'{cls.__module__}.{cls.__qualname__}'.encode())
        state = getattr(value, '__dict__', None)
        if isinstance(state, dict):
            stack.add(id(value))
            _digest_value(h, state, stack)
            stack.discard(id(value))


def compute_digest(checkpoint: Mapping, keys: Optional[List[Any]] = None) -> Dict[Any, str]:
    """SHA-256 (hex) of each top-level key of ``keys`` (all by default) with
    its content; ``meta`` is hashed without the digest itself."""
    digests = {}
    for key in (list(checkpoint) if keys is None else keys):
        value = checkpoint[key]
        if key == 'meta' and isinstance(value, Mapping) and DIGEST_KEY in value:
            value = {k: v for k, v in value.items() if k != DIGEST_KEY}
        h = hashlib.sha256()
        # the key too: pickle stores a repeated string once, so a damaged
        # key would rename this entry and its digest's key alike
        _digest_value(h, key, set())
        _digest_value(h, value, set())
        digests[key] = h.hexdigest()
    return digests


def attach_digest(checkpoint: dict, keys: Optional[List[Any]] = None) -> dict:
    """Put the content digest into ``checkpoint['meta']`` (made if missing)
    and return the checkpoint. It covers the top-level keys present now;
    keys added later are left out, not misread. ``keys``: hash only these
    and add them to a digest already there (for a key added after it)."""
    if not isinstance(checkpoint, dict):
        raise TypeError(f'a checkpoint digest needs a dict, not {type(checkpoint).__name__}')
    meta = checkpoint.setdefault('meta', {})
    if not isinstance(meta, dict):
        raise TypeError(f"checkpoint['meta'] is a {type(meta).__name__}, not a dict")
    record = meta.get(DIGEST_KEY) if keys is not None else None
    if not isinstance(record, dict) or not isinstance(record.get('sha256'), dict):
        record, keys = {'sha256': {}}, None
    record['sha256'].update(compute_digest(checkpoint, keys))
    meta[DIGEST_KEY] = record
    return checkpoint


def verify_digest(checkpoint: Any, source: str) -> bool:
    """Check a loaded checkpoint against its digest: True when it carries
    one and matches, False when it carries none; CheckpointError naming the
    first part that differs, or saying that the digest itself is damaged."""
    record, in_place = _find_record(checkpoint)
    if record is None:
        return False
    expected = record.get('sha256') if isinstance(record, Mapping) else None
    if not in_place or len(record) != 1 or not isinstance(expected, Mapping) or not expected or \
            not all(_hashable(key) and key in checkpoint and isinstance(value, str)
                    for key, value in expected.items()):
        raise CheckpointError(f'Checkpoint is corrupt: {source} carries a damaged content '
                              f'digest ({DIGEST_KEY}); download or copy it again')
    for key, value in expected.items():
        if compute_digest(checkpoint, [key])[key] != value:
            raise CheckpointError(f'Checkpoint is corrupt: {source} fails its content digest '
                                  f'in {key!r} (its tensors or values differ from those it was '
                                  'saved with); download or copy it again')
    return True


def _find_record(checkpoint: Any):
    """The digest record, and whether it sits at ``meta[DIGEST_KEY]``. One
    flipped bit in the name ``meta``, ``mmsnnmlp_digest`` or ``sha256`` must
    not turn the check off: a record-like dict under a top-level dict counts
    as a digest in the wrong place."""
    if not isinstance(checkpoint, Mapping):
        return None, True
    meta = checkpoint.get('meta')
    if isinstance(meta, Mapping) and DIGEST_KEY in meta:
        return meta[DIGEST_KEY], True
    for value in checkpoint.values():
        if isinstance(value, Mapping):
            for inner, item in value.items():
                if inner == DIGEST_KEY or _looks_like_record(item):
                    return item, False
    return None, True


def _looks_like_record(item: Any) -> bool:
    if not isinstance(item, Mapping) or len(item) != 1:
        return False
    (name, digests), = item.items()
    return name == 'sha256' or (isinstance(digests, Mapping) and bool(digests) and all(
        isinstance(d, str) and len(d) == 64 for d in digests.values()))


def _hashable(key) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True
