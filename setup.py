import os.path as osp

from setuptools import find_packages, setup

here = osp.dirname(osp.abspath(__file__))
version = {}
with open(osp.join(here, 'mmsnnmlp', 'version.py')) as f:
    exec(f.read(), version)

setup(
    name='mmsnnmlp',
    version=version['__version__'],
    description='SNN-MLP backbone for MMDetection and MMSegmentation',
    long_description=open(osp.join(here, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmsnnmlp', 'mmsnnmlp.*']),
    python_requires='>=3.8',
    # The core (backbone, LIF op) needs only these; mmdet/mmseg are optional.
    install_requires=['torch>=1.12', 'mmengine>=0.8'],
    extras_require={
        'det': ['mmdet>=3.0,<3.4', 'mmcv>=2.0,<2.2', 'pycocotools'],
        'seg': ['mmsegmentation>=1.0,<1.3', 'mmcv>=2.0,<2.2', 'ftfy', 'regex'],
    },
    license='Apache-2.0',
)
