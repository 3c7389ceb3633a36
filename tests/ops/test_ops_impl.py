"""The implementation switch of the fused ops, the Triton fallback, the
library-op registration and torch.compile of the whole backbone."""
import inspect
import io
import os.path as osp
import subprocess
import sys
import warnings

import pytest
import torch

from mmsnnmlp.models import SNNMLP
from mmsnnmlp.ops import IMPLS, LIF, NormAct, dispatch, library, lif, norm_act, set_impl

triton = pytest.importorskip('triton')
from mmsnnmlp.ops import lif_triton, norm_act_triton  # noqa: E402


def _tiny(**kwargs):
    torch.manual_seed(0)
    return SNNMLP(arch=dict(embed_dims=8, depths=(1, 1, 2, 1)), drop_path_rate=0.0, **kwargs)


def _outputs_and_grads(model, x, run=None):
    """Outputs, and the gradients of a fixed random weighting of them (zero
    where autograd never reached a parameter: LIF on maps shorter than a group)."""
    model.zero_grad(set_to_none=True)
    outs = (model if run is None else run)(x)
    gen = torch.Generator().manual_seed(1)
    loss = sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outs)
    loss.backward()
    grads = {n: torch.zeros_like(p) if p.grad is None else p.grad.clone()
             for n, p in model.named_parameters()}
    return [o.detach() for o in outs], grads


def _assert_same(a, b, rtol=1e-5, atol=1e-5):
    for x, y in zip(a[0], b[0]):
        torch.testing.assert_close(x, y, rtol=rtol, atol=atol)
    assert a[1].keys() == b[1].keys()
    for name in a[1]:
        torch.testing.assert_close(a[1][name], b[1][name], rtol=rtol, atol=atol, msg=name)


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv('MMSNNMLP_IMPL', raising=False)
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)
    monkeypatch.setattr(dispatch, '_triton_failures', {})
    monkeypatch.setenv('MMSNNMLP_SELFCHECK', '0')  # tested in test_selfcheck.py


def _spy(monkeypatch, module, name):
    calls = []
    fn = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a: calls.append(1) or fn(*a))
    return calls


def test_auto_uses_the_torch_path_on_cpu(clean_env, monkeypatch):
    calls = _spy(monkeypatch, lif_triton, 'forward') + _spy(monkeypatch, norm_act_triton,
                                                             'forward')
    x = torch.randn(1, 2, 8, 8)
    lif(x, 0.25, 0.1)
    norm_act(x, None, None, act='gelu')
    assert calls == []


def test_triton_on_cpu_needs_the_interpreter(clean_env):
    x = torch.randn(1, 2, 8, 8)
    with pytest.raises(RuntimeError, match='TRITON_INTERPRET=1'):
        lif(x, 0.25, 0.1, impl='triton')
    with pytest.raises(RuntimeError, match='TRITON_INTERPRET=1'):
        norm_act(x, None, None, impl='triton')


def test_auto_picks_triton_for_cuda_tensors(clean_env, monkeypatch):
    """What 'auto' picks on CUDA, checked without a GPU: a stand-in for a
    CUDA tensor (dispatch looks only at is_cuda and device)."""
    from types import SimpleNamespace
    if dispatch.triton is None:
        pytest.skip('triton does not import here')
    cuda = SimpleNamespace(is_cuda=True, device=torch.device('cuda'))

    def pick():
        return dispatch.run('lif', 'auto', cuda, lambda: 'triton', lambda: 'torch')

    assert pick() == 'triton'
    monkeypatch.setenv('MMSNNMLP_IMPL', 'torch')  # the user's override
    assert pick() == 'torch'
    monkeypatch.delenv('MMSNNMLP_IMPL')
    monkeypatch.setattr(dispatch, 'triton', None)  # no triton: the PyTorch path
    assert pick() == 'torch'


def test_environment_overrides_auto(clean_env, monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.setenv('MMSNNMLP_IMPL', 'triton')
    calls = _spy(monkeypatch, norm_act_triton, 'forward')
    norm_act(torch.randn(1, 2, 4, 4), None, None)
    assert len(calls) == 1
    monkeypatch.setenv('MMSNNMLP_IMPL', 'torch')
    norm_act(torch.randn(1, 2, 4, 4), None, None)
    assert len(calls) == 1
    monkeypatch.setenv('MMSNNMLP_IMPL', 'fast')
    with pytest.raises(ValueError, match='MMSNNMLP_IMPL must be'):
        norm_act(torch.randn(1, 2, 4, 4), None, None)


def _broken_kernel(*args):
    raise RuntimeError('PTX .version 9.9 does not support .target sm_90')  # as a toolchain would


@pytest.mark.parametrize('op', ['lif', 'norm_act'])
def test_auto_falls_back_once_when_a_kernel_fails(clean_env, monkeypatch, op):
    """'auto' picks Triton (forced by the environment, on CPU under the
    interpreter), the kernel fails: one warning naming the Triton version,
    the PyTorch path's result, and the kernel is not tried again."""
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.setenv('MMSNNMLP_IMPL', 'triton')
    module = lif_triton if op == 'lif' else norm_act_triton
    attempts = []
    monkeypatch.setattr(module, 'forward', lambda *a: attempts.append(1) or _broken_kernel())
    x = torch.randn(2, 3, 9, 7, requires_grad=True)
    run = ((lambda t, impl: lif(t, 0.3, 0.1, 4, 3, impl=impl)) if op == 'lif' else
           (lambda t, impl: norm_act(t, None, None, act='gelu', impl=impl)))
    with pytest.warns(RuntimeWarning, match=f'{op} failed on triton {triton.__version__}'):
        out = run(x, 'auto')
    torch.testing.assert_close(out, run(x, 'torch'), rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        run(x, 'auto').sum().backward()  # also backward: PyTorch path, no warning
    assert len(attempts) == 1
    with pytest.raises(RuntimeError, match='PTX'):  # an explicit choice raises
        run(x, 'triton')


def test_onnx_export_traces_the_reference(clean_env, monkeypatch):
    """Whatever impl the modules ask for (here 'triton' too, which could not
    even run on CPU without the interpreter), an ONNX export traces the
    reference formulation: standard ONNX ops only, no mmsnnmlp library op,
    and the same values."""
    onnx = pytest.importorskip('onnx')
    model = torch.nn.Sequential(NormAct(4, act='gelu', impl='torch'), LIF(2, 4, impl='torch'),
                                LIF(3, None, impl='triton'), NormAct(4, impl='auto')).eval()
    x = torch.randn(1, 4, 9, 6, generator=torch.Generator().manual_seed(8))
    assert not dispatch.traces_reference(x, 'torch')
    with monkeypatch.context() as patch:
        patch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
        assert all(dispatch.traces_reference(x, impl) for impl in IMPLS)
    buffer = io.BytesIO()
    legacy = dict(dynamo=False) if 'dynamo' in inspect.signature(torch.onnx.export).parameters \
        else {}  # the TorchScript exporter: seconds, not a minute
    torch.onnx.export(model, (x,), buffer, **legacy)
    graph = onnx.load_from_string(buffer.getvalue()).graph
    assert {node.domain for node in graph.node} == {''}
    ort = pytest.importorskip('onnxruntime')
    session = ort.InferenceSession(buffer.getvalue(), providers=['CPUExecutionProvider'])
    (out,) = session.run(None, {graph.input[0].name: x.numpy()})
    with torch.no_grad():
        expected = set_impl(model, 'torch')(x)
    torch.testing.assert_close(torch.from_numpy(out), expected, rtol=1e-4, atol=1e-4)


def test_set_impl_reaches_every_module():
    model = _tiny(impl='torch')
    fused = [m for m in model.modules() if isinstance(m, (LIF, NormAct))]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
    # 5 blocks of 5 norms and 2 LIFs, the patch embedding, 3 mergings, 4 outputs
    assert len(fused) == 5 * 7 + 1 + 3 + 4 and len(norms) == len(fused) - 5 * 2
    assert all(m.impl == 'torch' for m in fused)
    assert set_impl(model, 'reference') is model
    assert all(m.impl == 'reference' for m in fused)
    with pytest.raises(ValueError, match='impl must be one of'):
        set_impl(model, 'fast')
    with pytest.raises(ValueError, match='impl must be one of'):
        _tiny(impl='cuda')
    assert IMPLS == ('auto', 'torch', 'triton', 'reference')


def _float64_model_run(impl):
    x = torch.randn(2, 3, 20, 28, generator=torch.Generator().manual_seed(2),
                    dtype=torch.float64)
    return _outputs_and_grads(_tiny(impl=impl).double(), x)


def test_model_torch_path_equals_reference(clean_env):
    """The whole backbone, outputs and every parameter's gradient, in float64."""
    _assert_same(_float64_model_run('torch'), _float64_model_run('reference'), 1e-9, 1e-9)


@pytest.mark.slow
def test_model_triton_equals_reference(clean_env, monkeypatch):
    """The same through the Triton kernels, run by the interpreter (slow:
    about 200 kernel launches)."""
    reference = _float64_model_run('reference')
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    _assert_same(_float64_model_run('triton'), reference, 1e-9, 1e-9)


def test_library_ops_pass_opcheck():
    """Schemas, fake kernels and autograd registration (torch >= 2.4)."""
    if not library.HAS_CUSTOM_OP:
        pytest.skip('torch < 2.4: plain autograd.Function, no library ops')
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 9, 7, generator=gen, requires_grad=True)
    w = torch.randn(3, generator=gen, requires_grad=True)
    b = torch.randn(3, generator=gen, requires_grad=True)
    tau = torch.tensor([0.3], requires_grad=True)
    vth = torch.tensor([0.1], requires_grad=True)
    ops = torch.ops.mmsnnmlp
    torch.library.opcheck(ops.lif, (x, tau, vth, 4, 2, 'torch'))
    torch.library.opcheck(ops.lif, (x, tau, vth, None, 3, 'torch'))
    torch.library.opcheck(ops.norm_act, (x, w, b, 1e-5, True, 'torch', torch.float32))
    torch.library.opcheck(ops.norm_act, (x, None, None, 1e-5, False, 'torch', torch.float32))
    # channels_last in, channels_last out: the fake kernels promise x's layout
    xcl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    torch.library.opcheck(ops.lif, (xcl, tau, vth, 3, 3, 'torch'))
    torch.library.opcheck(ops.norm_act, (xcl, w, b, 1e-5, True, 'torch', torch.bfloat16))


@pytest.mark.parametrize('impl', ['torch', pytest.param('triton', marks=pytest.mark.slow)])
def test_channels_last_model_stays_channels_last(clean_env, monkeypatch, impl):
    """model.to(memory_format=channels_last) (faster 1x1 convolutions on
    CPU): every op keeps the layout, and the results equal NCHW's."""
    if impl == 'triton':
        monkeypatch.setenv('TRITON_INTERPRET', '1')
    model = _tiny(impl=impl).double()
    x = torch.randn(1, 3, 24, 20, generator=torch.Generator().manual_seed(6),
                    dtype=torch.float64)
    reference = _outputs_and_grads(model, x)
    model = model.to(memory_format=torch.channels_last)
    outs, grads = _outputs_and_grads(model, x.contiguous(memory_format=torch.channels_last))
    assert all(o.is_contiguous(memory_format=torch.channels_last) for o in outs)
    _assert_same((outs, grads), reference, 1e-9, 1e-9)


def _compiled_equals_eager(backend):
    if not library.HAS_CUSTOM_OP:
        pytest.skip('torch.compile support needs torch >= 2.4 (torch.library.custom_op)')
    torch._dynamo.reset()
    # float64: code generation reorders float sums, and in float32 that can
    # flip a spike sitting on its threshold, which changes gradients for real
    x = torch.randn(2, 3, 20, 28, generator=torch.Generator().manual_seed(3),
                    dtype=torch.float64)
    model = _tiny().double()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    _assert_same(_outputs_and_grads(model, x, run=compiled),
                 _outputs_and_grads(_tiny().double(), x), 1e-9, 1e-9)


def test_fullgraph_compile_equals_eager():
    """Dynamo captures the backbone in one graph, forward and backward (the
    graph runs as traced, without code generation)."""
    _compiled_equals_eager('aot_eager')


@pytest.mark.slow
def test_fullgraph_inductor_equals_eager():
    """The default backend: C++ code generation on CPU (minutes on 2 cores)."""
    _compiled_equals_eager('inductor')


@pytest.mark.slow
def test_mmengine_compile_trains_the_toy_segmentor(tmp_path):
    """mmengine's ``compile`` (Runner cfg) on the toy UperNet config: two
    training iterations on generated data. Dynamo traces train_step; the
    'aot_eager' backend keeps it short (the default 'inductor' backend takes
    about 10 minutes on 2 cores here and trains the same)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    from mmsnnmlp.engine import keep_optimizer_step_eager
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    subprocess.run([sys.executable, f'{root}/tools/misc/make_toy_data.py', '--out',
                    str(tmp_path / 'data/toy'), '--num-train', '4', '--num-val', '2',
                    '--size', '96', '--seed', '3'], check=True, capture_output=True)
    cfg = Config.fromfile(f'{root}/configs/toy/snnmlp-toy_upernet_toy-ade.py')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(tmp_path / 'data/toy/ade/ADEChallengeData2016')
    cfg.merge_from_dict({'work_dir': str(tmp_path / 'work'), 'compile': dict(backend='aot_eager'),
                         'train_cfg.max_iters': 2, 'train_cfg.val_interval': 100,
                         'train_dataloader.batch_size': 2, 'default_hooks.logger.interval': 1,
                         'default_hooks.checkpoint.interval': 100})
    runner = Runner.from_cfg(cfg)
    keep_optimizer_step_eager(runner)  # as tools/train.py does with compile on
    runner.train()
    assert runner.iter == 2
    assert hasattr(runner.model.train_step, '_torchdynamo_orig_callable')  # compiled
    assert torch.isfinite(torch.tensor(runner.message_hub.get_scalar('train/loss').current()))
