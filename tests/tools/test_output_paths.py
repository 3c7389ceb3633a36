"""Output paths (--out-file, --out, --metrics-json, --show-dir, --json,
--out-dir, work dirs) are checked before any config, checkpoint or model is
loaded: an unwritable one stops the tool at once, naming the path.

Unwritable here means: a parent that is a regular file (refused for root
too), or a read-only folder. Tests often run as root, whom the mode bits do
not stop, so there a read-only folder is simulated by making ``os.access``
answer "not writable" for it, in-process (the check asks os.access, which
also reports read-only file systems)."""
import importlib.util
import os
import os.path as osp
import time

import cv2
import numpy as np
import pytest

from mmsnnmlp.fileio import OutputPathError, check_writable

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py')


def _load_tool(path):
    name = 'mmsnnmlp_tool_paths_' + osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_read_only(folder, monkeypatch):
    """``folder`` read-only: by its mode, and for root through os.access."""
    os.chmod(folder, 0o555)
    if os.access(folder, os.W_OK):  # root: the mode bits do not apply
        real_access, target = os.access, osp.realpath(folder)

        def access(path, mode, *args, **kwargs):
            if mode & os.W_OK and osp.realpath(path) == target:
                return False
            return real_access(path, mode, *args, **kwargs)
        monkeypatch.setattr(os, 'access', access)
    return folder


@pytest.fixture()
def a_file(tmp_path):
    path = tmp_path / 'plain_file'
    path.write_text('not a folder')
    return path


@pytest.fixture()
def read_only(tmp_path, monkeypatch):
    folder = tmp_path / 'read_only'
    folder.mkdir()
    yield make_read_only(folder, monkeypatch)
    os.chmod(folder, 0o755)


def _forbid(monkeypatch, module, *names):
    """Fail the test if the tool reaches any of these (its slow steps)."""
    for name in names:
        def reached(*args, _name=name, **kwargs):
            raise AssertionError(f'{_name} was reached before the output check')
        monkeypatch.setattr(module, name, reached)


# -- the library function ------------------------------------------------------

def test_parent_is_a_file(a_file):
    for folder in (False, True):
        with pytest.raises(OutputPathError, match=rf'Cannot write --x {a_file}/sub/out: '
                                                  rf'{a_file} is a file, not a folder'):
            check_writable(str(a_file / 'sub' / 'out'), folder=folder, what='--x')


def test_read_only_folder(read_only):
    with pytest.raises(OutputPathError, match=rf'Cannot write {read_only}/m.json: folder '
                                              rf'{read_only} is not writable$'):
        check_writable(str(read_only / 'm.json'))
    with pytest.raises(OutputPathError, match=rf'folder {read_only} is not writable, so the '
                                              'folders below it cannot be made'):
        check_writable(str(read_only / 'a' / 'b'), folder=True)


def test_kind_of_existing_path(tmp_path, a_file):
    with pytest.raises(OutputPathError, match=rf'Cannot write {tmp_path}: it is a folder'):
        check_writable(str(tmp_path))
    with pytest.raises(OutputPathError, match=rf'{a_file}: it is a file, not a folder'):
        check_writable(str(a_file), folder=True)


def test_missing_folders_that_can_be_made_pass_and_are_not_made(tmp_path):
    check_writable(str(tmp_path / 'a' / 'b' / 'out.json'))
    check_writable(str(tmp_path / 'c' / 'd'), folder=True)
    check_writable(str(tmp_path / 'existing.json'))
    assert sorted(os.listdir(tmp_path)) == []


# -- the tools ------------------------------------------------------------------

@pytest.fixture()
def test_tool(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('LOCAL_RANK', '0')
    return _load_tool('tools/test.py')


@pytest.mark.parametrize('option', ['--metrics-json', '--out'])
@pytest.mark.parametrize('where', ['under_a_file', 'read_only'])
def test_test_tool_checks_its_outputs_first(test_tool, monkeypatch, request, option, where):
    folder = request.getfixturevalue('a_file' if where == 'under_a_file' else 'read_only')
    target = folder / ('metrics.json' if option == '--metrics-json' else 'results.pkl')
    _forbid(monkeypatch, test_tool, 'load_tool_config', 'safe_load', 'build_runner')
    start = time.time()
    with pytest.raises(SystemExit, match=rf'Cannot write {option} {target}: '):
        test_tool.main([DET, 'model.pth', option, str(target)])
    assert time.time() - start < 3


@pytest.mark.parametrize('option', ['--work-dir', '--show-dir'])
def test_test_tool_checks_work_and_show_dirs_before_the_checkpoint(test_tool, monkeypatch,
                                                                   tmp_path, a_file, option):
    _forbid(monkeypatch, test_tool, 'safe_load', 'build_runner')
    args = [DET, 'model.pth', '--work-dir', str(tmp_path / 'work')]
    if option == '--work-dir':
        args[-1] = str(a_file / 'work')
        expected = rf'Cannot write work dir {a_file}/work: {a_file} is a file'
    else:
        (tmp_path / 'work').mkdir()
        (tmp_path / 'work' / 'vis').write_text('a file where drawings would go')
        args += ['--show-dir', 'vis']
        expected = rf'Cannot write --show-dir {tmp_path}/work/vis: it is a file, not a folder'
    with pytest.raises(SystemExit, match=expected):
        test_tool.main(args)


def test_train_tool_checks_its_work_dir_first(monkeypatch, tmp_path, read_only):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('LOCAL_RANK', '0')
    train = _load_tool('tools/train.py')
    _forbid(monkeypatch, train, 'claim_work_dir', 'check_backbone', 'check_data')
    monkeypatch.setattr(train, 'Runner', None)
    with pytest.raises(SystemExit, match=rf'Cannot write work dir {read_only}/run: folder '
                                         rf'{read_only} is not writable'):
        train.main([DET, '--work-dir', str(read_only / 'run')])
    assert not (read_only / 'run').exists()


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / 'in.jpg'
    cv2.imwrite(str(path), np.full((32, 32, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize('where', ['under_a_file', 'read_only'])
def test_demo_checks_its_out_file_before_loading(monkeypatch, request, image, where):
    demo = _load_tool('tools/demo/image_demo.py')
    folder = request.getfixturevalue('a_file' if where == 'under_a_file' else 'read_only')
    out_file = folder / 'drawing.jpg'
    _forbid(monkeypatch, demo, 'safe_load', 'run_detection', 'run_segmentation')
    monkeypatch.setattr(demo.Config, 'fromfile', None)  # not even the config
    start = time.time()
    with pytest.raises(SystemExit, match=rf'Cannot write --out-file {out_file}: '):
        demo.main([str(image), DET, 'model.pth', '--out-file', str(out_file)])
    assert time.time() - start < 3


ANALYSIS_TOOLS = {
    'ablation_table': (['--json', '{out}/t.json'], '--json {out}/t.json'),
    'benchmark_backbone': (['--json', '{out}/b.json'], '--json {out}/b.json'),
    'benchmark_ops': (['--json', '{out}/o.json'], '--json {out}/o.json'),
    'eval_imagenet': (['model.pth', '--data', 'val', '--json', '{out}/e.json'],
                      '--json {out}/e.json'),
    'profile_backbone': (['--json', '{out}/p.json'], '--json {out}/p.json'),
    'visualize_lif': (['in.jpg', '--checkpoint', 'model.pth', '--out-dir', '{out}/lif'],
                      '--out-dir {out}/lif'),
    'gpu_report': (['--device', 'cpu', '--out-dir', '{out}/report'], '--out-dir {out}/report'),
}


@pytest.mark.parametrize('name', sorted(ANALYSIS_TOOLS))
def test_analysis_tools_check_their_outputs_first(name, a_file, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    tool = _load_tool(f'tools/analysis_tools/{name}.py')
    args, named = ANALYSIS_TOOLS[name]
    start = time.time()
    with pytest.raises(SystemExit, match=rf'Cannot write {named.format(out=a_file)}: {a_file} '
                                         'is a file, not a folder'):
        tool.main([a.format(out=a_file) for a in args])
    assert time.time() - start < 3
