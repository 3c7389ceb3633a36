"""Autocast (bf16, fp16) through the backbone: no dtype errors, LIF and norm
math in float32 inside, outputs close to float32 runs."""
import pytest
import torch

from mmsnnmlp.models import SNNMLP
from mmsnnmlp.ops import LIF, NormAct


def _weighted_sum(outs):
    gen = torch.Generator().manual_seed(5)
    return sum((o.float() * torch.randn(o.shape, generator=gen)).sum() for o in outs)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_backbone_under_autocast(dtype):
    torch.manual_seed(0)
    model = SNNMLP(arch=dict(embed_dims=16, depths=(1, 1, 2, 1)), drop_path_rate=0.0)
    x = torch.randn(2, 3, 48, 64)
    reference = [o.detach() for o in model(x)]
    seen = {}

    def record(module, inputs, output):
        dtypes = {output.dtype} | ({inputs[0].dtype} if isinstance(module, LIF) else set())
        seen.setdefault(type(module).__name__, set()).update(dtypes)
    for m in model.modules():
        if isinstance(m, LIF) or (isinstance(m, NormAct) and m.autocast_output):
            m.register_forward_hook(record)
    with torch.autocast('cpu', dtype=dtype):
        outs = model(x)
    _weighted_sum(outs).backward()
    # the outputs keep float32, as F.group_norm does under CUDA autocast
    assert all(o.dtype == torch.float32 for o in outs)
    # inside, LIF and the outputs of norms feeding convolutions are in the
    # autocast dtype (the residual stream stays float32)
    assert seen == {'LIF': {dtype}, 'NormAct': {dtype}}
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32, name
        assert torch.isfinite(p.grad).all(), name
    # LIF and norm math in float32: the outputs stay close to a float32 run
    tol = 0.1 if dtype == torch.bfloat16 else 0.02
    for o, r in zip(outs, reference):
        assert (o - r).abs().mean() < tol * r.abs().mean()
