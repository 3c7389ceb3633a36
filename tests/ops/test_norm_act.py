"""norm_act == act(F.group_norm(x, 1, weight, bias, eps)) against float64
PyTorch, on the PyTorch path (CPU) and on the Triton kernels under Triton's
interpreter: values and all three gradients, awkward shapes, tile tails."""
import pytest
import torch
import torch.nn.functional as F

from mmsnnmlp.ops import NormAct, norm_act

# 1x1 maps, odd sizes, N = 1..3, a (N, C, L) input, and the tails of the
# Triton tiles (BLOCK_HW = 1024: HW 1025; BLOCK_C = 4 there: C = 5)
SHAPES = [(1, 3, 1, 1), (2, 5, 7, 9), (3, 2, 1, 13), (1, 7, 33, 65), (2, 5, 1025, 1),
          (3, 4, 17)]
TOL = {torch.float64: 1e-10, torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}


def _case(shape, dtype, seed, affine=True):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 1.7 + 0.4
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    c = shape[1]
    w = 1 + 0.5 * torch.randn(c, generator=gen, dtype=torch.float64) if affine else None
    b = 0.3 * torch.randn(c, generator=gen, dtype=torch.float64) if affine else None
    # round once to the tested dtype; the float64 reference sees the same values
    x, g = x.to(dtype).double(), g.to(dtype).double()
    return x, g, w, b


def _grads(fn, x, g, w, b):
    leaves = [t.detach().clone().requires_grad_(True) if t is not None else None
              for t in (x, w, b)]
    out = fn(*leaves)
    (out.double() * g).sum().backward()
    return [out.detach()] + [t.grad if t is not None else None for t in leaves]


def _reference(act):
    def fn(x, w, b):
        y = F.group_norm(x, 1, w, b, 1e-5)
        return F.gelu(y) if act == 'gelu' else y
    return fn


def _check(impl, shape, dtype, act, seed, affine=True):
    x, g, w, b = _case(shape, dtype, seed, affine)
    ref = _grads(_reference(act), x, g, w, b)
    pdtype = torch.float64 if dtype == torch.float64 else torch.float32
    cast = (lambda t: None if t is None else t.to(pdtype))
    got = _grads(lambda x, w, b: norm_act(x, w, b, 1e-5, act, impl), x.to(dtype), g,
                 cast(w), cast(b))
    assert got[0].dtype == dtype and got[1].dtype == dtype
    tol = TOL[dtype]
    for name, a, r in zip(('out', 'dx', 'dweight', 'dbias'), got, ref):
        if r is None:
            assert a is None
            continue
        # gradients sum over many values: scale the tolerance with their size
        scale = 1 if name in ('out', 'dx') else max(1.0, r.abs().max().item())
        torch.testing.assert_close(a.double(), r, rtol=tol, atol=tol * scale, msg=name)


@pytest.mark.parametrize('act', [None, 'gelu'])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32, torch.float16,
                                   torch.bfloat16])
@pytest.mark.parametrize('seed, shape', list(enumerate(SHAPES)))
def test_torch_path_matches_float64(seed, shape, dtype, act):
    _check('torch', shape, dtype, act, seed)


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.delenv('MMSNNMLP_IMPL', raising=False)
    pytest.importorskip('triton')


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of at most 8 x 16 and merges of 4 partials: the interpreter is
    slow, and small shapes then still have tails in C and HW, many tiles per
    sample and several merge steps."""
    from mmsnnmlp.ops import norm_act_triton
    monkeypatch.setattr(norm_act_triton, 'TILE', 64)
    monkeypatch.setattr(norm_act_triton, 'MAX_BLOCK_HW', 16)
    monkeypatch.setattr(norm_act_triton, 'MERGE_BLOCK', 4)


# tails of the small tiles: HW 17 = 16 + 1, C 5 = 4 + 1 (BLOCK_C 4 at HW 17)
TRITON_SHAPES = [(1, 3, 1, 1), (2, 5, 3, 3), (3, 2, 1, 13), (1, 5, 17, 1), (2, 9, 5, 7),
                 (3, 4, 17)]


@pytest.mark.parametrize('act', [None, 'gelu'])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32, torch.float16,
                                   torch.bfloat16])
@pytest.mark.parametrize('seed, shape', list(enumerate(TRITON_SHAPES)))
def test_triton_matches_float64(interpret, small_tiles, seed, shape, dtype, act):
    _check('triton', shape, dtype, act, seed)


def test_triton_default_tiles(interpret):
    """The shipped tile sizes, with a tail in HW (1024 + 1)."""
    _check('triton', (2, 3, 1025, 1), torch.float32, 'gelu', seed=31)


@pytest.mark.parametrize('impl', ['torch', 'triton'])
def test_without_affine_parameters(interpret, impl):
    _check(impl, (2, 3, 5, 6), torch.float32, 'gelu', seed=3, affine=False)


def test_triton_statistics_are_shifted(interpret, small_tiles):
    """A mean far from 0 with a small spread: a naive E[x^2] - E[x]^2 gives
    0 here, and summing raw values over many tiles loses digits."""
    x = 1000.0 + 0.01 * torch.randn(1, 6, 7, 9, generator=torch.Generator().manual_seed(9),
                                    dtype=torch.float64)
    out = norm_act(x.float(), None, None, impl='triton')
    torch.testing.assert_close(out.double(), F.group_norm(x.float().double(), 1),
                               rtol=0, atol=5e-3)  # F.group_norm in float32: 3.9e-3


def test_output_dtype_under_autocast():
    """float32 by default, as F.group_norm under CUDA autocast (on any
    device); out_dtype or NormAct(autocast_output=True) pick the autocast dtype."""
    x = torch.randn(2, 4, 5, 5)
    w, b = torch.randn(4), torch.randn(4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        xb = x.bfloat16()
        assert norm_act(xb, w, b).dtype == torch.float32
        assert norm_act(xb, w, b, out_dtype=torch.bfloat16).dtype == torch.bfloat16
        assert NormAct(4, act='gelu', autocast_output=True)(xb).dtype == torch.bfloat16
        assert NormAct(4, act='gelu')(xb).dtype == torch.float32
    assert norm_act(xb, w, b).dtype == torch.bfloat16  # no autocast: x's dtype
    torch.testing.assert_close(norm_act(xb, w, b, out_dtype=torch.float32),
                               F.group_norm(xb.float(), 1, w, b), rtol=1e-5, atol=1e-5)


def test_module_keeps_group_norm_keys_and_type():
    m = NormAct(6, act='gelu')
    assert isinstance(m, torch.nn.GroupNorm) and m.num_groups == 1
    assert set(m.state_dict()) == {'weight', 'bias'}
    ref = torch.nn.GroupNorm(1, 6)
    ref.load_state_dict(m.state_dict())
    x = torch.randn(2, 6, 3, 4)
    torch.testing.assert_close(m(x), F.gelu(ref(x)))


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(x=torch.randn(4)), ValueError, r'\(N, C, \*\)'),
    (dict(x=torch.ones(2, 3, 4, dtype=torch.int64)), ValueError, 'float'),
    (dict(x=torch.randn(1, 1, 1, 1)), ValueError, 'more than one value'),
    (dict(bias=None), ValueError, 'both or neither'),
    (dict(weight=torch.ones(4), bias=torch.zeros(4)), ValueError, r'shape \(3,\)'),
    (dict(act='relu'), ValueError, 'act must be'),
    (dict(impl='cuda'), ValueError, 'impl must be one of'),
])
def test_bad_arguments(kwargs, error, message):
    args = dict(x=torch.randn(2, 3, 4, 4), weight=torch.ones(3), bias=torch.zeros(3))
    args.update(kwargs)
    with pytest.raises(error, match=message):
        norm_act(**args)


@pytest.mark.parametrize('dtype', ['fp32', 'fp16', 'bf16', 'fp64'])
def test_kernels_compile_for_cuda_without_gpu(dtype):
    from helpers.aot_compile import compile_for_sm90
    from mmsnnmlp.ops import norm_act_triton as nat
    ctype = 'fp64' if dtype == 'fp64' else 'fp32'
    tl_ctype = triton_language().float64 if dtype == 'fp64' else triton_language().float32
    data = {name: '*' + dtype for name in ('x_ptr', 'y_ptr', 'g_ptr', 'dx_ptr')}
    data.update(w_ptr='*fp32', b_ptr='*fp32')
    tiles = dict(BLOCK_C=4, BLOCK_HW=1024, CTYPE=tl_ctype, AFFINE=True, GELU=True)
    compiled = [compile_for_sm90(nat.forward_kernel, data, '*' + ctype,
                                 dict(tiles, APPLY=apply), num_warps=4)
                for apply in (False, True)]
    compiled += [compile_for_sm90(nat.backward_kernel, data, '*' + ctype,
                                  dict(tiles, INPUT_GRAD=input_grad), num_warps=4)
                 for input_grad in (False, True)]
    compiled.append(compile_for_sm90(nat.merge_kernel, data, '*' + ctype,
                                     dict(BLOCK=1024, STEPS=2, CTYPE=tl_ctype),
                                     floats=('eps',), num_warps=4))
    for kernel in compiled:
        assert 'atom.' not in kernel.asm['ptx']  # no atomics: deterministic


def triton_language():
    return pytest.importorskip('triton.language')
