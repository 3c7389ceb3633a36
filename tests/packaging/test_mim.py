"""openmim drives mmsnnmlp like an OpenMMLab codebase on the editable install
that tools/install.sh makes: `mim list/search/run/train/test mmsnnmlp ...`.

mim finds a package at ``<dist location>/<package>``, which for a PEP 660
editable install is site-packages, where only the dist-info lives;
``tools/install.sh --mim-link`` adds the symlink site-packages/mmsnnmlp ->
the source package. Each test here runs in a throwaway venv holding an
editable install of a copy of the source, on top of this venv's packages
(a .pth line), so this venv's own install is never touched.
(test_packaging.py runs the same mim commands on a wheel install.)
"""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig

import pytest
import yaml

pytest.importorskip('mim')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_SEG = 'snnmlp-toy_upernet_toy-ade.py'


class Env:
    """A venv with an editable install of ``src``; ``run`` runs its python."""

    def __init__(self, root):
        self.root = root
        self.src = osp.join(root, 'src')
        self.venv = osp.join(root, 'venv')
        self.python = osp.join(self.venv, 'bin', 'python')
        self.work = osp.join(root, 'work')
        os.makedirs(self.work, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}

    @property
    def site(self):
        return self.run('-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
                        ).stdout.strip()

    def run(self, *args, check=True, timeout=600):
        out = subprocess.run([self.python, *map(str, args)], cwd=self.work, env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if check:
            assert out.returncode == 0, f'{args}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}'
        return out

    def mim(self, *args, **kw):
        return self.run('-m', 'mim', *args, **kw)

    def mim_link(self):
        out = subprocess.run(['bash', osp.join(self.src, 'tools/install.sh'), '--mim-link'],
                             env=dict(self.env, MMSNNMLP_VENV=self.venv), capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        return out


def make_editable_env(root):
    env = Env(str(root))
    shutil.copytree(ROOT, env.src, ignore=shutil.ignore_patterns(
        '.git', '.venv*', 'work_dirs', 'data', 'build', 'dist', '*.egg-info', '__pycache__',
        '.mim', '.pytest_cache', '.hypothesis'))
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', env.venv], check=True,
                   timeout=120)
    # this venv's packages (torch, mmengine, mim, pip, ...) under the new one's own
    # site-packages; a plain path line, so this venv's .pth files (its own editable
    # mmsnnmlp) are not run there
    with open(osp.join(env.site, '_test_stack.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    # --ignore-installed: never uninstall this venv's mmsnnmlp
    env.run('-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation',
            '--ignore-installed', '-e', env.src)
    env.mim_link()
    return env


@pytest.fixture(scope='module')
def editable(tmp_path_factory):
    return make_editable_env(tmp_path_factory.mktemp('mim_editable'))


def test_link_points_at_the_source(editable):
    link = osp.join(editable.site, 'mmsnnmlp')
    assert osp.islink(link) and os.readlink(link) == osp.join(editable.src, 'mmsnnmlp')
    out = editable.run('-c', 'import os, mmsnnmlp; print(os.path.realpath(mmsnnmlp.__file__))')
    assert out.stdout.strip() == osp.join(editable.src, 'mmsnnmlp', '__init__.py')
    # the .mim symlinks inside the package resolve through the link
    for name in ('configs/toy/' + TOY_SEG, 'tools/train.py', 'model-index.yml'):
        assert osp.isfile(osp.join(link, '.mim', name)), name
    # idempotent, and listed once in RECORD (pip uninstall removes it)
    editable.mim_link()
    record = glob.glob(osp.join(editable.site, 'mmsnnmlp-*.dist-info', 'RECORD'))[0]
    assert open(record).read().splitlines().count('mmsnnmlp,,') == 1


def test_mim_list_shows_mmsnnmlp(editable):
    out = editable.mim('list')
    assert any(line.split()[:1] == ['mmsnnmlp'] for line in out.stdout.splitlines()), out.stdout


def test_mim_search_lists_our_models(editable):
    index = yaml.safe_load(open(osp.join(ROOT, 'model-index.yml')))
    names = [m['Name'] for meta in index['Import']
             for m in yaml.safe_load(open(osp.join(ROOT, meta)))['Models']]
    out = editable.mim('search', 'mmsnnmlp')
    found = [line.split(':', 1)[1].strip() for line in out.stdout.splitlines()
             if line.startswith('config id:')]
    assert sorted(found) == sorted(n.lower() for n in names)


@pytest.mark.slow
def test_mim_run_get_flops(editable):
    out = editable.mim('run', 'mmsnnmlp', 'get_flops', f'mmsnnmlp::toy/{TOY_SEG}',
                       '--shape', '64', '64')
    assert 'analysis_tools/get_flops.py' in out.stdout and 'FLOPs:' in out.stdout, out.stdout
    assert osp.realpath(osp.join(editable.site, 'mmsnnmlp/.mim/tools')) == \
        osp.join(editable.src, 'tools')


def test_mim_run_unknown_script_fails_cleanly(editable):
    out = editable.mim('run', 'mmsnnmlp', 'no_such_tool', check=False)
    assert out.returncode != 0 and 'No script in codebase mmsnnmlp' in out.stderr + out.stdout


@pytest.mark.slow
def test_mim_train_and_test_by_config_name(editable):
    editable.run(osp.join(editable.src, 'tools/misc/make_toy_data.py'), '--out', 'data/toy',
                 '--num-train', 2, '--num-val', 1, '--size', 64)
    # the bare config name: mim searches the package's configs
    out = editable.mim('train', 'mmsnnmlp', TOY_SEG, '--work-dir', 'w', '--cfg-options',
                       'train_cfg.max_iters=1', 'train_cfg.val_interval=100',
                       'train_dataloader.batch_size=2', 'default_hooks.checkpoint.interval=1')
    assert osp.join(editable.src, 'configs/toy', TOY_SEG) in out.stdout
    assert osp.isfile(osp.join(editable.work, 'w/iter_1.pth'))
    editable.mim('test', 'mmsnnmlp', TOY_SEG, '--checkpoint', 'w/iter_1.pth', '--work-dir',
                 'w', '--metrics-json', 'metrics.json')
    assert 'mIoU' in json.load(open(osp.join(editable.work, 'metrics.json')))


@pytest.mark.slow
def test_pip_uninstall_removes_the_link_not_the_source(tmp_path):
    env = make_editable_env(tmp_path)
    link = osp.join(env.site, 'mmsnnmlp')
    env.run('-m', 'pip', 'uninstall', '-y', '-q', 'mmsnnmlp')
    assert not osp.lexists(link)
    assert osp.isfile(osp.join(env.src, 'mmsnnmlp', '__init__.py'))
    assert osp.isfile(osp.join(env.src, 'configs/toy', TOY_SEG))
