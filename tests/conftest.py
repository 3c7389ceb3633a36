"""Reproducible test runs.

* Every test starts from the same global RNG states (torch, numpy, random), so
  a test draws the same data whatever ran before it and however it is selected.
* Hypothesis is derandomised: its examples come from a fixed seed derived from
  each test, and no example database is kept between runs (database=None), so
  two runs try exactly the same examples.
* ``MMSNNMLP_RNG_DIGEST=FILE`` writes, per test, a digest of every random
  tensor torch generated (explicit generators included), the numpy seeds asked
  for and the global RNG states at the end. Two runs whose files are identical
  drew identical data (compare runs under different PYTHONHASHSEED values).
"""
import contextlib
import hashlib
import os
import random
import socket

import numpy as np
import pytest
import torch
from hypothesis import settings

settings.register_profile('mmsnnmlp', derandomize=True, database=None, print_blob=True)
settings.load_profile('mmsnnmlp')


def pytest_runtest_setup(item):
    # a hook, not a fixture: hypothesis refuses function-scoped fixtures in @given tests
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)


@pytest.fixture
def free_port():
    """A TCP port the OS picked as free (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def one_thread():
    """Small models on shared cores: one thread is faster and steadier."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def timm_registered():
    """The timm classifiers in timm's registry (as importing mmsnnmlp does once timm is)."""
    from mmsnnmlp.models.snnmlp_timm import register_timm_models
    register_timm_models()


# -- optional digest of the random data each test draws --------------------
_RANDOM_OPS = {'rand', 'randn', 'randint', 'randperm', 'rand_like', 'randn_like',
               'randint_like', 'normal', 'normal_', 'uniform_', 'bernoulli', 'bernoulli_',
               'multinomial', 'exponential_', 'random_', 'cauchy_', 'geometric_',
               'log_normal_', 'poisson', 'dropout', 'trunc_normal_'}


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().contiguous().reshape(-1)
    return str(t.dtype).encode() + t.view(torch.uint8).numpy().tobytes()


class _RandomTensorDigest(torch.overrides.TorchFunctionMode):

    def __init__(self, sha):
        super().__init__()
        self.sha = sha

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if getattr(func, '__name__', '') in _RANDOM_OPS and isinstance(out, torch.Tensor):
            self.sha.update(func.__name__.encode() + _tensor_bytes(out))
        return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    path = os.environ.get('MMSNNMLP_RNG_DIGEST')
    if not path:
        yield
        return
    sha = hashlib.sha256()
    default_rng = np.random.default_rng

    def recording_default_rng(seed=None):
        sha.update(f'numpy default_rng({seed!r})'.encode())
        return default_rng(seed)

    np.random.default_rng = recording_default_rng
    try:
        with _RandomTensorDigest(sha):
            yield
    finally:
        np.random.default_rng = default_rng
    sha.update(_tensor_bytes(torch.get_rng_state()))
    sha.update(repr(np.random.get_state()[1].tolist()).encode())
    sha.update(repr(random.getstate()).encode())
    with open(path, 'a') as f:
        f.write(f'{item.nodeid} {sha.hexdigest()}\n')


@pytest.fixture
def fresh_compiler():
    """torch.compile with no on-disk state and a reset Dynamo (inductor's and
    AOT autograd's caches and Dynamo's profile of dynamic sizes, PGO, would
    make the graphs compiled, and their count, depend on earlier runs), and
    the C++ kernels built at -O0: the same generated code and IEEE results
    (no fast math, no FMA contraction), built in about half the time."""
    import torch._dynamo.config as dynamo_config
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config
    options = [(getattr(torch.compiler, 'config', None), dict(force_disable_caches=True)),
               (inductor_config, dict(force_disable_caches=True, fx_graph_cache=False,
                                      autotune_local_cache=False,
                                      **{'aot_inductor.debug_compile': True})),
               (functorch_config, dict(enable_autograd_cache=False)),
               (dynamo_config, dict(automatic_dynamic_local_pgo=False))]
    with contextlib.ExitStack() as stack:
        for module, values in options:  # ConfigModule.patch: restored on exit
            values = {k: v for k, v in values.items()
                      if hasattr(module, k) or k == 'aot_inductor.debug_compile'}
            if module is not None and values:
                stack.enter_context(module.patch(values))
        torch._dynamo.reset()
        yield
        torch._dynamo.reset()
