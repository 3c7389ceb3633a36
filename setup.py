import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

here = osp.dirname(osp.abspath(__file__))
version = {}
with open(osp.join(here, 'mmsnnmlp', 'version.py')) as f:
    exec(f.read(), version)

# Shipped inside the package, as OpenMMLab packages do, so that configs can
# inherit `mmsnnmlp::det/...` and `mim train mmsnnmlp` finds the tools.
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def add_mim_extension() -> None:
    """Place MIM_FILES under mmsnnmlp/.mim: symlinks for editable installs,
    copies for wheels and sdists (nothing for other commands)."""
    if any(cmd in sys.argv for cmd in ('develop', 'editable_wheel')):
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'build', 'build_py')):
        mode = 'copy'
    else:
        return
    mim_dir = osp.join(here, 'mmsnnmlp', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(here, name), osp.join(mim_dir, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


add_mim_extension()
setup(
    name='mmsnnmlp',
    version=version['__version__'],
    description='SNN-MLP backbone for MMDetection and MMSegmentation',
    long_description=open(osp.join(here, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmsnnmlp', 'mmsnnmlp.*']),
    package_data={'mmsnnmlp': ['.mim/model-index.yml', '.mim/configs/**/*.py',
                               '.mim/configs/**/*.yml', '.mim/tools/**/*.py',
                               '.mim/tools/dist_*.sh', '.mim/tools/slurm_*.sh']},
    python_requires='>=3.8',
    # The core (backbone, LIF op, timm models) needs only these; mmdet/mmseg
    # are optional. Tested with torch 2.1.2 and 2.14.1, mmengine 0.10.7.
    # mmengine is capped: SafeCheckpointHook overrides its private
    # CheckpointHook._save_checkpoint_with_step (unchanged from 0.8.5 through
    # 0.10.7) and reads Runner._resume/_load_from; tests/engine/
    # test_mmengine_contract.py fails when a release changes them.
    install_requires=['torch>=2.1', 'mmengine>=0.10.0,<0.11'],
    extras_require={
        'det': ['mmdet>=3.0,<3.4', 'mmcv>=2.0,<2.2', 'pycocotools'],
        'seg': ['mmsegmentation>=1.0,<1.3', 'mmcv>=2.0,<2.2', 'ftfy', 'regex'],
        'timm': ['timm>=0.9'],
        'deploy': ['onnx>=1.15', 'onnxruntime>=1.17', 'onnxscript',
                   'openvino>=2024.0; platform_machine == "x86_64" or platform_machine == "aarch64"'],
    },
    license='Apache-2.0',
)
