"""Property test of the backbone: any input size, every LIF group size."""
import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsnnmlp.models import SNNMLP


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 80), st.integers(1, 80), st.integers(1, 3),
       st.sampled_from([None, 1, 2, 3, 4, 7]), st.integers(0, 2**31 - 1))
def test_backbone_any_size(h, w, n, group, seed):
    torch.manual_seed(seed)  # weights and input from hypothesis' draw, not leftover state
    model = SNNMLP(dict(embed_dims=4, depths=(1, 1, 1, 1)), lif_group=group,
                   drop_path_rate=0.0).eval()
    with torch.no_grad():
        outs = model(torch.randn(n, 3, h, w))
    sh, sw = math.ceil(h / 4), math.ceil(w / 4)
    for i, o in enumerate(outs):
        assert tuple(o.shape) == (n, 4 * 2**i, sh, sw)
        assert torch.isfinite(o).all()
        sh, sw = math.ceil(sh / 2), math.ceil(sw / 2)
