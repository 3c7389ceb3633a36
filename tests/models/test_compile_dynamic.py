"""torch.compile (inductor, fullgraph) of the backbone and the timm classifier
trained and run at changing input sizes: one dynamic graph serves new sizes,
and compiled gradients equal eager ones.

Toy widths keep inductor's compile time down on CPU."""
import copy
import os.path as osp
import subprocess
import sys

import pytest
import timm
import torch
from torch._dynamo.backends.registry import lookup_backend

from mmsnnmlp.models import SNNMLP
from mmsnnmlp.models.snnmlp_timm import register_timm_models

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = dict(embed_dim=16, depths=(1, 1, 1, 1))
TOY_ARCH = dict(embed_dims=16, depths=(1, 1, 1, 1))


@pytest.fixture(scope='module', autouse=True)
def registered():
    register_timm_models()


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


class CountingInductor:
    """Inductor, counting the graphs dynamo hands it (one per compile or recompile)."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        return lookup_backend('inductor')(gm, example_inputs)


def _loss(out):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view(o.shape)).sum()
               for o in outs)


def _step(model, x):
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    out = model(x)
    _loss(out).backward()
    return out, x.grad


def _assert_compiled_equals_eager(eager, sizes, dynamic, batch=2):
    """Train steps (forward + backward) at ``sizes`` in a row; outputs, input
    gradients and parameter gradients of the compiled copy equal eager ones."""
    compiled_model = copy.deepcopy(eager)
    backend = CountingInductor()
    compiled = torch.compile(compiled_model, backend=backend, fullgraph=True, dynamic=dynamic)
    for size in sizes:
        x = torch.randn(batch, 3, *size, dtype=torch.float64)
        out, gx = _step(eager, x)
        cout, cgx = _step(compiled, x)
        tol = dict(rtol=1e-7, atol=1e-9)
        for o, c in zip(out if isinstance(out, tuple) else (out,),
                        cout if isinstance(cout, tuple) else (cout,)):
            torch.testing.assert_close(c, o, **tol)
        torch.testing.assert_close(cgx, gx, **tol)
        for (name, p), q in zip(eager.named_parameters(), compiled_model.parameters()):
            if p.grad is None:
                assert q.grad is None, name
            else:
                torch.testing.assert_close(q.grad, p.grad, **tol, msg=f'{name} at {size}')
    return backend.graphs


def test_classifier_trains_compiled_at_a_new_size():
    """The first size compiles static, the second recompiles dynamic (dynamo's
    automatic dynamic shapes): both train, with eager's gradients."""
    model = timm.create_model('snnmlp_tiny', num_classes=10, **TOY).double().train()
    graphs = _assert_compiled_equals_eager(model, [(64, 64), (96, 96)], dynamic=None)
    assert graphs == 2


def test_classifier_dynamic_graph_serves_new_sizes_without_recompiling():
    model = timm.create_model('snnmlp_tiny', num_classes=10, **TOY).double().eval()
    sizes = [(128, 128), (256, 192), (384, 128), (128, 512)]
    assert _assert_compiled_equals_eager(model, sizes, dynamic=True, batch=1) == 1


def test_classifier_odd_sizes_in_a_row():
    """Sizes that pad in the patch embedding and merging, and leave LIF tails."""
    model = timm.create_model('snnmlp_tiny', num_classes=10, **TOY).double().train()
    sizes = [(67, 61), (99, 73), (67, 61), (131, 45)]
    graphs = _assert_compiled_equals_eager(model, sizes, dynamic=True)
    assert graphs <= 3  # a graph per padding/tail pattern, not per size
    # the sizes seen so far, in another order: all served by the graphs made
    graphs_again = _assert_compiled_equals_eager(model, sizes[::-1], dynamic=True)
    assert graphs_again == graphs


def test_backbone_trains_compiled_at_changing_sizes():
    model = SNNMLP(arch=TOY_ARCH, drop_path_rate=0.0).double().train()
    sizes = [(64, 64), (96, 96), (128, 160), (83, 77)]
    graphs = _assert_compiled_equals_eager(model, sizes, dynamic=None)
    assert graphs <= 3


def test_backbone_dynamic_graph_serves_new_sizes_without_recompiling():
    model = SNNMLP(arch=TOY_ARCH, out_indices=(1, 3)).double().eval()
    sizes = [(128, 128), (256, 384), (512, 128)]
    assert _assert_compiled_equals_eager(model, sizes, dynamic=True, batch=1) == 1


@pytest.mark.slow
def test_mmengine_compile_trains_the_toy_mask_rcnn_at_changing_sizes(tmp_path):
    """mmengine's ``compile=True`` through a few iterations of the toy Mask
    R-CNN, whose multi-scale resize changes the input size every iteration."""
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/misc/make_toy_data.py'), '--out',
                    'data/toy', '--num-train', '6', '--num-val', '1', '--size', '64'],
                   cwd=tmp_path, check=True, capture_output=True)
    config = osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py')
    opts = ['compile=True', 'train_cfg.max_epochs=1', 'val_cfg=None', 'val_dataloader=None',
            'val_evaluator=None', 'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=1', 'train_dataloader.batch_size=2',
            # multi-scale: a random scale per image, so every batch has its own size
            'train_dataloader.dataset.pipeline.3.type=RandomChoiceResize',
            'train_dataloader.dataset.pipeline.3.scales=[(64,64),(96,96),(80,112)]',
            'model.train_cfg.rpn.sampler.num=64', 'model.train_cfg.rcnn.sampler.num=32',
            'randomness.seed=3']
    out = subprocess.run([sys.executable, osp.join(ROOT, 'tools/train.py'), config,
                          '--work-dir', str(tmp_path / 'work'), '--cfg-options', *opts],
                         cwd=tmp_path, capture_output=True, text=True)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'compiled' in log
    assert (tmp_path / 'work' / 'epoch_1.pth').exists()
