"""2 CPU processes (gloo) with batch b train the same weights as 1 process with 2b (slow)."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
pytestmark = pytest.mark.slow


def test_two_processes_match_one_with_double_batch(tmp_path, free_port):
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                    'data/toy', '--num-train', '8', '--num-val', '2', '--size', '64'],
                   cwd=tmp_path, check=True, capture_output=True)
    # Deterministic math: no random augmentation, dropout or stochastic depth;
    # SyncBN in the heads; plain SGD.
    cfg = tmp_path / 'equiv.py'
    cfg.write_text(textwrap.dedent(f"""
        _base_ = '{ROOT}/configs/toy/snnmlp-toy_upernet_toy-ade.py'
        norm_cfg = dict(type='SyncBN', requires_grad=True)
        model = dict(backbone=dict(drop_path_rate=0.0),
                     decode_head=dict(dropout_ratio=0.0, norm_cfg=norm_cfg),
                     auxiliary_head=dict(dropout_ratio=0.0, norm_cfg=norm_cfg))
        pipeline = [dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations', reduce_zero_label=True),
                    dict(type='PackSegInputs')]
        train_dataloader = dict(dataset=dict(pipeline=pipeline))
        optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                             optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
        param_scheduler = []
        train_cfg = dict(max_iters=3, val_interval=100)
        default_hooks = dict(checkpoint=dict(interval=3), logger=dict(interval=1))
        randomness = dict(seed=5)
    """))
    single = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools/train.py'), str(cfg), '--work-dir', 'one',
         '--cfg-options', 'train_dataloader.batch_size=4'], cwd=tmp_path, capture_output=True,
        text=True)
    assert single.returncode == 0, single.stderr[-3000:]
    env = dict(os.environ, PORT=str(free_port), PYTHON=sys.executable,
               OMP_NUM_THREADS='1')
    double = subprocess.run(
        ['bash', osp.join(ROOT, 'tools/dist_train.sh'), str(cfg), '2', '--work-dir', 'two',
         '--cfg-options', 'train_dataloader.batch_size=2'], cwd=tmp_path, capture_output=True,
        text=True, env=env)
    assert double.returncode == 0, double.stdout[-2000:] + double.stderr[-3000:]

    from mmsnnmlp.models import safe_load
    one = safe_load(tmp_path / 'one/iter_3.pth')['state_dict']
    two = safe_load(tmp_path / 'two/iter_3.pth')['state_dict']
    assert one.keys() == two.keys()
    moved = 0
    for key in one:
        torch.testing.assert_close(two[key].float(), one[key].float(), rtol=2e-4, atol=2e-5,
                                   msg=key)
        moved += 'running_mean' in key
    assert moved > 0  # SyncBN running stats are part of the comparison
