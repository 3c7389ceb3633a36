"""mmengine's ``compile`` (torch.compile, automatic dynamic shapes) through
two training iterations of the toy Mask R-CNN with a multi-scale resize, the
two batches of different sizes.

CI compiles with ``compile=dict(backend='aot_eager')``: Dynamo's capture and
AOT autograd's joint graphs, what changing sizes stress. ``compile=True``
(inductor) is the same test with ``MMSNNMLP_TEST_INDUCTOR=1``: Dynamo breaks
the detector's step into ~140 graphs, and inductor compiles each of them
again at each new size of a CPU training step
(tests/models/test_compile_dynamic.py): 13.5 min on 2 cores at load 4, too
long for CI; it passed by hand (README, "torch.compile, AMP, memory layout").
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from torch._dynamo.utils import counters

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
COMPILE = True if os.environ.get('MMSNNMLP_TEST_INDUCTOR') == '1' else dict(backend='aot_eager')
DET = osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py')
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(torch.library, 'custom_op'),
                       reason='torch.compile support needs torch >= 2.4')]


def test_compile_true_trains_the_toy_mask_rcnn_at_changing_sizes(tmp_path, fresh_compiler):
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from mmsnnmlp.engine import keep_optimizer_step_eager
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                    str(tmp_path / 'data/toy'), '--num-train', '2', '--num-val', '1', '--size',
                    '64', '--seed', '3'], check=True, capture_output=True)
    cfg = Config.fromfile(DET)
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'data/toy/coco') + '/'
    # The paper configs' multi-scale resize, at toy scales: one image per batch,
    # each resized to its own (w, h) (the data preprocessor pads to 32).
    cfg.train_dataloader.dataset.pipeline[3] = dict(
        type='RandomChoiceResize', scales=[(64, 64), (96, 64), (64, 96)], keep_ratio=False)
    widths = [16, 32, 64, 128]  # the smallest toy: compile time grows with the graph
    cfg.merge_from_dict({
        'model.backbone.arch': dict(embed_dims=widths[0], depths=(1, 1, 1, 1)),
        'model.neck.in_channels': widths,
        'work_dir': str(tmp_path / 'work'), 'compile': COMPILE,
        'train_cfg.max_epochs': 1, 'val_cfg': None, 'val_dataloader': None,
        'val_evaluator': None, 'train_dataloader.batch_size': 1,
        'train_dataloader.sampler.shuffle': False,
        'default_hooks.logger.interval': 1, 'default_hooks.checkpoint.interval': 100,
        'model.train_cfg.rpn.sampler.num': 64, 'model.train_cfg.rcnn.sampler.num': 32,
        'randomness.seed': 3})

    sizes = []

    class RecordSizes(Hook):

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            sizes.append(tuple(data_batch['inputs'][0].shape[-2:]))

    counters.clear()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(RecordSizes())
    keep_optimizer_step_eager(runner)  # as tools/train.py does with compile on
    before = {n: p.detach().clone() for n, p in runner.model.backbone.named_parameters()}
    runner.train()

    print('batch sizes', sizes, 'graphs', counters['stats']['unique_graphs'])
    assert runner.iter == 2
    assert len(set(sizes)) >= 2, f'the resize drew one size only: {sizes}'
    assert hasattr(runner.model.train_step, '_torchdynamo_orig_callable')  # compiled
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.as_tensor(loss))
    moved = [n for n, p in runner.model.backbone.named_parameters()
             if not torch.equal(p.detach(), before[n])]
    assert moved, 'no backbone parameter changed'
