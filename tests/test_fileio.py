"""Atomic file output."""
import os

import pytest

from mmsnnmlp.fileio import atomic_open


def test_atomic_open_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / 'out.json'
    target.write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_open(str(target)) as f:
            f.write('half-written')
            raise RuntimeError('killed mid-write')
    assert target.read_text() == 'old'
    assert os.listdir(tmp_path) == ['out.json']  # no temp file left behind
    with pytest.raises(FileExistsError, match='Refusing to overwrite'):
        with atomic_open(str(target), overwrite=False) as f:
            f.write('new')
    with atomic_open(str(target)) as f:
        f.write('new')
    assert target.read_text() == 'new'


def test_atomic_writes_follow_symlinks_like_plain_writes(tmp_path):
    """The link stays a link and its target gets the new content, as with
    ``open(link, 'w')`` (also for a link to a missing file, and a chain)."""
    (tmp_path / 'real').mkdir()
    target = tmp_path / 'real' / 'config.py'
    target.write_text('old')
    target.chmod(0o640)
    link = tmp_path / 'link.py'
    link.symlink_to(target)
    chain = tmp_path / 'chain.py'
    chain.symlink_to(link)
    with atomic_open(str(chain)) as f:
        f.write('new')
    assert chain.is_symlink() and link.is_symlink()
    assert target.read_text() == 'new' and (target.stat().st_mode & 0o777) == 0o640
    assert sorted(os.listdir(tmp_path / 'real')) == ['config.py']
    dangling = tmp_path / 'dangling.json'
    dangling.symlink_to(tmp_path / 'real' / 'later.json')
    with atomic_open(str(dangling)) as f:
        f.write('{}')
    assert dangling.is_symlink() and (tmp_path / 'real' / 'later.json').read_text() == '{}'
    with pytest.raises(FileExistsError, match='Refusing to overwrite'):
        with atomic_open(str(dangling), overwrite=False) as f:
            f.write('x')


def test_atomic_write_into_a_symlink_loop_fails_like_a_plain_write(tmp_path):
    loop = tmp_path / 'loop'
    loop.symlink_to(tmp_path / 'loop')
    with pytest.raises(OSError) as plain:
        open(loop, 'w')
    with pytest.raises(OSError) as atomic:
        with atomic_open(str(loop)) as f:
            f.write('x')
    assert atomic.value.errno == plain.value.errno
    assert loop.is_symlink()
