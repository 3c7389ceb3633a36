"""The self-check of the Triton kernels under impl='auto': a wrong kernel is
caught on its first use and replaced by the PyTorch path; a correct one is
checked once per (device, dtype); MMSNNMLP_SELFCHECK=0 and explicit
impl='triton' skip it; torch.compile and inference mode leave it working.

'auto' is routed to the Triton kernels for CPU tensors by the environment
(MMSNNMLP_IMPL=triton), which the interpreter (TRITON_INTERPRET=1) runs.
"""
import warnings

import pytest
import torch

from mmsnnmlp.ops import dispatch, library, lif, norm_act, selfcheck

triton = pytest.importorskip('triton')
from mmsnnmlp.ops import lif_triton, norm_act_triton  # noqa: E402

KERNELS = {'lif': lif_triton, 'norm_act': norm_act_triton}


@pytest.fixture
def auto_is_triton(monkeypatch):
    """'auto' picks Triton for CPU tensors; nothing checked or failed yet."""
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.setenv('MMSNNMLP_IMPL', 'triton')
    monkeypatch.delenv('MMSNNMLP_SELFCHECK', raising=False)
    monkeypatch.setattr(dispatch, '_triton_failures', {})
    monkeypatch.setattr(selfcheck, '_done', {})
    # one norm tile is enough to catch the wrong kernels below (interpreter time)
    monkeypatch.setattr(selfcheck, 'NORM_ACT_SHAPES', selfcheck.NORM_ACT_SHAPES[:1])


def _inputs(dtype=torch.float32):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 9, 7, generator=gen, dtype=dtype)
    return x, torch.randn(x.shape, generator=gen, dtype=dtype)


def _run(op, x, grad, impl):
    """Output and dL/dx of ``op`` (LIF along W with a tail; norm_act + GELU)."""
    x = x.detach().requires_grad_(True)
    out = (lif(x, 0.3, 0.1, 4, 3, impl) if op == 'lif' else
           norm_act(x, None, None, act='gelu', impl=impl))
    out.backward(grad)
    return out.detach(), x.grad


def _spy(monkeypatch, module, name):
    calls = []
    fn = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a: calls.append(1) or fn(*a))
    return calls


def _corrupt(monkeypatch, op, entry):
    """Make the Triton ``entry`` ('forward' or 'backward') of ``op`` return
    wrong values on its last position only (a tail), like a miscompiled mask."""
    module = KERNELS[op]
    real = getattr(module, entry)

    def wrong(*args):
        result = real(*args)
        first = result[0] if isinstance(result, tuple) else result
        first[..., -1, -1] += 0.5
        return result
    monkeypatch.setattr(module, entry, wrong)


@pytest.mark.parametrize('entry', ['forward', 'backward'])
@pytest.mark.parametrize('op', ['lif', 'norm_act'])
def test_a_wrong_kernel_is_caught_and_replaced(auto_is_triton, monkeypatch, op, entry):
    _corrupt(monkeypatch, op, entry)
    calls = _spy(monkeypatch, KERNELS[op], entry)
    x, grad = _inputs()
    with pytest.warns(RuntimeWarning) as record:
        out, dx = _run(op, x, grad, 'auto')
    messages = [str(w.message) for w in record if 'mmsnnmlp' in str(w.message)]
    assert len(messages) == 1, messages
    # the kernel, the device, the Triton version and the error
    assert f'the Triton kernels of {op} give wrong results on triton {triton.__version__}' \
        in messages[0]
    assert 'cpu (Triton interpreter), self-check in float32' in messages[0]
    assert 'max error' in messages[0] and 'MMSNNMLP_SELFCHECK=0' in messages[0]
    assert op in dispatch._triton_failures
    (result,) = selfcheck.results()
    assert (result.op, result.device, result.dtype, result.ok) == (op, 'cpu', 'float32', False)
    # the first call already took the PyTorch path, and so does every later one
    expected = _run(op, x, grad, 'torch')
    for got in ((out, dx), _run(op, x, grad, 'auto')):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    probe_calls = len(calls)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        _run(op, x.double(), grad.double(), 'auto')  # another dtype: no probe, no kernel
    assert len(calls) == probe_calls and len(selfcheck.results()) == 1
    # an explicit choice is not replaced: the (wrong) kernel runs as asked
    assert not torch.equal(torch.stack(_run(op, x, grad, 'triton')), torch.stack(expected))


@pytest.mark.parametrize('op', ['lif', 'norm_act'])
def test_a_correct_kernel_is_checked_once(auto_is_triton, monkeypatch, op):
    probes = _spy(monkeypatch, selfcheck, 'probe')
    calls = _spy(monkeypatch, KERNELS[op], 'forward')
    x, grad = _inputs()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        first = _run(op, x, grad, 'auto')
        probe_calls = len(calls)
        again = _run(op, x, grad, 'auto')
        assert len(probes) == 1
        assert len(calls) == probe_calls + 1  # 'auto' runs the kernel itself now
        _run(op, x.to(torch.bfloat16), grad.to(torch.bfloat16), 'auto')
        assert len(probes) == 2  # a new dtype: a new probe
        _run(op, x.to(torch.bfloat16), grad.to(torch.bfloat16), 'auto')
    assert len(probes) == 2
    assert [(r.op, r.dtype, r.ok) for r in selfcheck.results()] == [
        (op, 'float32', True), (op, 'bfloat16', True)]
    assert all(r.results and r.error is None and r.ms > 0 for r in selfcheck.results())
    assert dispatch._triton_failures == {}
    expected = _run(op, x, grad, 'triton')
    for got in (first, again):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_selfcheck_0_turns_it_off(auto_is_triton, monkeypatch):
    monkeypatch.setenv('MMSNNMLP_SELFCHECK', '0')
    _corrupt(monkeypatch, 'lif', 'forward')
    probes = _spy(monkeypatch, selfcheck, 'probe')
    x, grad = _inputs()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        out, _ = _run('lif', x, grad, 'auto')
    assert probes == [] and selfcheck.results() == [] and dispatch._triton_failures == {}
    assert not torch.equal(out, _run('lif', x, grad, 'torch')[0])  # unchecked: wrong


def test_explicit_triton_is_not_checked(auto_is_triton, monkeypatch):
    probes = _spy(monkeypatch, selfcheck, 'probe')
    x, grad = _inputs()
    _run('lif', x, grad, 'triton')
    _run('norm_act', x, grad, 'triton')
    assert probes == [] and selfcheck.results() == []


def test_a_kernel_error_in_the_probe_falls_back(auto_is_triton, monkeypatch):
    def broken(*args):
        raise RuntimeError('PTX .version 9.9 does not support .target sm_90')
    monkeypatch.setattr(norm_act_triton, 'backward', broken)
    x, grad = _inputs()
    with pytest.warns(RuntimeWarning, match=rf'norm_act failed on triton {triton.__version__} '
                      r'\(cpu \(Triton interpreter\), self-check in float32: RuntimeError: PTX'):
        out = _run('norm_act', x, grad, 'auto')
    torch.testing.assert_close(out, _run('norm_act', x, grad, 'torch'), rtol=0, atol=0)
    assert 'norm_act' in dispatch._triton_failures


def test_first_call_in_inference_mode_under_autocast(auto_is_triton):
    """The probe needs autograd and its own dtype, whatever the caller's mode."""
    x, _ = _inputs()
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = lif(x, 0.3, 0.1, 4, 3, 'auto')
    (result,) = selfcheck.results()
    assert result.ok and result.dtype == 'float32'
    torch.testing.assert_close(out, lif(x, 0.3, 0.1, 4, 3, 'torch'), rtol=0, atol=0)


def test_skipped_while_tracing(auto_is_triton, monkeypatch):
    """Nothing is probed (nor recorded) while Dynamo traces; the next eager call probes."""
    x, _ = _inputs()
    monkeypatch.setattr(torch.compiler, 'is_compiling', lambda: True)
    assert selfcheck.verify('lif', x) and selfcheck.results() == []


def test_compiled_model_is_checked_when_it_runs(auto_is_triton, monkeypatch):
    """fullgraph capture traces the library op (fake kernel, no probe); the
    probe runs once, eagerly, when the compiled graph first runs the op."""
    if not library.HAS_CUSTOM_OP:
        pytest.skip('torch.compile support needs torch >= 2.4 (torch.library.custom_op)')
    torch._dynamo.reset()
    probes = _spy(monkeypatch, selfcheck, 'probe')
    x, grad = _inputs()

    def fn(t):
        return lif(t, 0.3, 0.1, 4, 3, 'auto')
    compiled = torch.compile(fn, fullgraph=True, backend='aot_eager')
    xc = x.detach().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        out = compiled(xc)
        out.backward(grad)
        compiled(x)
    assert len(probes) == 1 and selfcheck.results()[0].ok
    expected = _run('lif', x, grad, 'triton')
    torch.testing.assert_close((out.detach(), xc.grad), expected, rtol=0, atol=0)
