"""The dense-GEMM floor of the benchmark tools: the GEMMs found in a forward
are exactly the model's 1x1 convs and Linear layers, counted from the
architecture by hand here, in every CPU path (the one-thread tiled shortcuts
call no conv module, the hooks must still see them)."""
import json

import pytest
import torch
from torch import nn

from helpers.tools import run_tool
from mmsnnmlp.analysis.benchmark import dense_gemms, time_gemms
from mmsnnmlp.models import SNNMLP


def expected_snnmlp_gemms(embed, depths, height, width, mlp_ratio=4):
    """(M, K, N) -> count for SNN-MLP: per block conv1, conv2_1, conv2_2 and
    conv3 (C -> C), fc1 (C -> rC) and fc2 (rC -> C); patch merging's
    reduction (4C -> 2C) at the next stage's size. Sizes ceil-halve (padding)."""
    counts = {}

    def add(key, n=1):
        counts[key] = counts.get(key, 0) + n

    h, w = -(-height // 4), -(-width // 4)
    for i, depth in enumerate(depths):
        c, m = embed * 2 ** i, h * w
        add((m, c, c), 4 * depth)
        add((m, c, mlp_ratio * c), depth)
        add((m, mlp_ratio * c, c), depth)
        if i < len(depths) - 1:
            h, w = -(-h // 2), -(-w // 2)
            add((h * w, 4 * c, 2 * c))
    return counts


@pytest.mark.parametrize('threads', [1, 2])
@pytest.mark.parametrize('size', [(64, 64), (57, 83)])
def test_dense_gemms_are_the_architectures(threads, size):
    torch.manual_seed(0)
    model = SNNMLP(dict(embed_dims=8, depths=[1, 2, 1, 1])).eval()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        found = dense_gemms(model, torch.randn(1, 3, *size))
    finally:
        torch.set_num_threads(previous)
    assert found == expected_snnmlp_gemms(8, [1, 2, 1, 1], *size)
    assert not any(m._forward_hooks for m in model.modules())  # hooks removed


def test_dense_gemms_count_linear_layers_over_leading_dims():
    model = nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 3), nn.Conv2d(3, 3, 3))
    found = dense_gemms(model[:3], torch.randn(2, 7, 6))
    assert found == {(14, 6, 5): 1, (14, 5, 3): 1}
    assert dense_gemms(model[3:], torch.randn(1, 3, 8, 8)) == {}  # 3x3: not one GEMM


def test_time_gemms_sums_shapes_by_count():
    floor = time_gemms({(64, 32, 16): 3, (8, 8, 8): 2}, torch.device('cpu'), 0, 1)
    assert floor['count'] == 5 and floor['ms'] > 0
    assert floor['gflop'] == round((3 * 2 * 64 * 32 * 16 + 2 * 2 * 8 ** 3) / 1e9, 2)


def test_benchmark_backbone_gemm_floor_column(tmp_path):
    out = tmp_path / 'bench.json'
    text = run_tool('analysis_tools/benchmark_backbone.py', '--device', 'cpu', '--shape',
                    '1x3x64x64', '--models', 'snnmlp-t', '--warmup', '0', '--iters', '1',
                    '--gemm-floor', '--json', out)
    (row,) = json.load(open(out))['models']
    flop = sum(2 * m * k * n * c
               for (m, k, n), c in expected_snnmlp_gemms(96, [2, 2, 6, 2], 64, 64).items())
    assert row['gemm_gflop'] == round(flop / 1e9, 2) and row['gemm_ms'] > 0
    assert 'GEMMs alone ms' in text
