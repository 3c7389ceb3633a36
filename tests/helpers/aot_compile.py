"""Ahead-of-time compilation of a Triton kernel for an H100 (sm_90) target.

Needs triton's bundled ptxas, not a GPU: it catches what the interpreter does
not check (typing, layouts, code generation). Skips the calling test where
this Triton's compiler API or toolchain is not available.
"""
import pytest

triton = pytest.importorskip('triton')


def compile_for_sm90(fn, types, default_ptr, constexprs, floats=(), **options):
    """Compile ``fn`` (a plain kernel function) for sm_90.

    Args:
        types (dict): argument name -> Triton type ('*fp16', ...).
        default_ptr (str): type of the other ``*_ptr`` arguments.
        constexprs (dict): values of the constexpr arguments.
        floats (tuple): names of the float scalar arguments (others are i32).
    """
    from mmsnnmlp.ops.triton_utils import add_combine
    if not isinstance(add_combine, triton.runtime.JITFunction):
        pytest.skip('mmsnnmlp was imported under TRITON_INTERPRET=1')
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as err:
        pytest.skip(f'no ahead-of-time compiler API in this triton: {err}')
    kernel = triton.jit(fn)
    signature = {}
    for name in kernel.arg_names:
        if name in constexprs:
            signature[name] = 'constexpr'
        elif name.endswith('_ptr'):
            signature[name] = types.get(name, default_ptr)
        else:
            signature[name] = 'fp32' if name in floats else 'i32'
    source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
    try:
        return triton.compile(source, target=GPUTarget('cuda', 90, 32), options=options)
    except (FileNotFoundError, RuntimeError) as err:
        if isinstance(err, FileNotFoundError) or 'ptxas' in str(err):
            pytest.skip(f'no CUDA toolchain for ahead-of-time compilation: {err}')
        raise
