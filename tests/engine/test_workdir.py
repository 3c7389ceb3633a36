"""One run per work dir (a file lock), and which checkpoint a resume uses."""
import logging
import os
import signal
import subprocess
import sys

import pytest
import torch

from mmsnnmlp.engine import (WorkDirBusy, claim_work_dir, lock_work_dir, resume_checkpoint,
                             unlock_work_dir)
from mmsnnmlp.models import CheckpointError


def _training_checkpoint(path, step, **extra):
    torch.save({'meta': {'epoch': 0, 'iter': step}, 'message_hub': {},
                'state_dict': {'w': torch.full((2,), float(step))}, **extra}, path)


class _Log(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def logger():
    log = logging.getLogger('test_workdir')
    handler = _Log()
    log.addHandler(handler)
    log.lines = handler.lines
    yield log
    log.removeHandler(handler)


def test_follows_last_checkpoint(tmp_path, logger):
    _training_checkpoint(tmp_path / 'iter_2.pth', 2)
    _training_checkpoint(tmp_path / 'iter_4.pth', 4)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert resume_checkpoint(str(tmp_path), logger) == str(tmp_path / 'iter_2.pth')
    assert not logger.lines


@pytest.mark.parametrize('record', [
    b'\xff\xfe\x00garbage',          # not text (was: UnicodeDecodeError)
    b'',                             # blank (was: "FileNotFoundError: can not be found.")
    b'/nowhere/iter_6.pth',          # points nowhere
    None,                            # missing
])
def test_falls_back_to_newest_valid_checkpoint(tmp_path, logger, record):
    _training_checkpoint(tmp_path / 'iter_2.pth', 2)
    _training_checkpoint(tmp_path / 'iter_4.pth', 4)
    (tmp_path / 'iter_6.pth').write_bytes(b'PK\x03\x04 truncated')  # newest, but broken
    if record is not None:
        (tmp_path / 'last_checkpoint').write_bytes(record)
    assert resume_checkpoint(str(tmp_path), logger) == str(tmp_path / 'iter_4.pth')
    assert len(logger.lines) == 1 and 'resuming from the newest valid checkpoint' in \
        logger.lines[0] and 'iter_6.pth' in logger.lines[0]


def test_last_checkpoint_naming_a_weights_only_file(tmp_path, logger):
    torch.save({'state_dict': {'w': torch.zeros(2)}}, tmp_path / 'epoch_3.pth')
    _training_checkpoint(tmp_path / 'epoch_2.pth', 2)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))
    assert resume_checkpoint(str(tmp_path), logger) == str(tmp_path / 'epoch_2.pth')
    assert 'is not a training checkpoint' in logger.lines[0]


def test_nothing_usable_is_an_error_and_nothing_at_all_a_fresh_start(tmp_path):
    assert resume_checkpoint(str(tmp_path)) is None
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    with pytest.raises(CheckpointError, match=r'names .*iter_4.pth, which does not exist, and no '
                                              'other checkpoint'):
        resume_checkpoint(str(tmp_path))
    (tmp_path / 'iter_2.pth').write_bytes(b'')
    with pytest.raises(CheckpointError, match=r'no checkpoint there is usable \(iter_2.pth: '
                                              'Checkpoint file is empty'):
        resume_checkpoint(str(tmp_path))


def test_lock_names_the_holder_and_dies_with_it(tmp_path):
    work = tmp_path / 'work'
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\n'
         'from mmsnnmlp.engine import lock_work_dir\n'
         'lock_work_dir(sys.argv[1]); print("locked", flush=True); time.sleep(600)', str(work)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        with pytest.raises(WorkDirBusy, match=rf'in use by another run \(PID {holder.pid}\)'):
            lock_work_dir(str(work))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock_work_dir(str(work))  # a killed holder leaves no stale lock
    lock_work_dir(str(work))  # this process may take it again
    assert (work / '.mmsnnmlp.lock').read_text().strip() == str(os.getpid())
    unlock_work_dir(str(work))


def test_claim_locks_and_clears_what_a_killed_writer_left(tmp_path):
    """claim_work_dir, which the hook and tools/train.py both call: the lock,
    then the temp files of interrupted writes go (the checkpoints stay);
    claiming again is a no-op."""
    work = tmp_path / 'work'
    work.mkdir()
    (work / '.iter_2.pth.a1b2c3d4.tmp').write_bytes(b'half')
    (work / 'iter_1.pth').write_bytes(b'whole')
    logged = []
    claim_work_dir(str(work), log=logged.append)
    try:
        assert (work / '.mmsnnmlp.lock').read_text().strip() == str(os.getpid())
        assert sorted(os.listdir(work)) == ['.mmsnnmlp.lock', 'iter_1.pth']
        assert logged == [f'Removed {work / ".iter_2.pth.a1b2c3d4.tmp"}, left by an '
                          'interrupted write']
        claim_work_dir(str(work), log=logged.append)
        assert len(logged) == 1
        out = subprocess.run(
            [sys.executable, '-c', 'import sys\nfrom mmsnnmlp.engine import claim_work_dir\n'
             'claim_work_dir(sys.argv[1])', str(work)], capture_output=True, text=True)
        assert out.returncode != 0 and f'in use by another run (PID {os.getpid()})' in out.stderr
    finally:
        unlock_work_dir(str(work))
