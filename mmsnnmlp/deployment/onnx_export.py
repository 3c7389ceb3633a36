"""Export to ONNX and check that the file holds standard ONNX ops only."""
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .exportable import EXPORTERS, ExportError, exportable

# Domains every ONNX runtime implements ('' and 'ai.onnx' are the same domain).
STANDARD_DOMAINS = ('', 'ai.onnx')
DEFAULT_OPSET = 17


def _require_onnx():
    try:
        import onnx
    except ImportError as err:  # the [deploy] extra
        raise ImportError('ONNX export needs the onnx package: pip install '
                          '"mmsnnmlp[deploy]" (or -r requirements/deploy.txt)') from err
    return onnx


def _all_nodes(graph) -> List:
    """Nodes of ``graph`` and of every subgraph (Loop/Scan/If bodies)."""
    nodes = []
    for node in graph.node:
        nodes.append(node)
        for attr in node.attribute:
            if attr.g is not None and attr.HasField('g'):
                nodes += _all_nodes(attr.g)
            for sub in attr.graphs:
                nodes += _all_nodes(sub)
    return nodes


def check_onnx(path: str) -> Dict:
    """``onnx.checker`` (full check, with shape inference) on ``path``; raises
    :class:`ExportError` if any node is outside the standard ONNX domain.

    Returns ``dict(opset=, op_types=sorted list, domains=sorted list)``."""
    onnx = _require_onnx()
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path, load_external_data=False)
    nodes = _all_nodes(model.graph)
    for function in model.functions:
        nodes += list(function.node)
    domains = sorted({node.domain for node in nodes})
    custom = sorted({f'{n.domain}::{n.op_type}' for n in nodes
                     if n.domain not in STANDARD_DOMAINS})
    if custom or model.functions:
        raise ExportError(f'{path} holds non-standard ops {custom} (or local functions '
                          f'{[f.name for f in model.functions]}): runtimes other than '
                          'PyTorch cannot run them')
    opset = next(o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS)
    return dict(opset=opset, op_types=sorted({n.op_type for n in nodes}), domains=domains)


def _free_output_dims(onnx, path: str) -> None:
    """Make every output dim but the channel dim (1) symbolic: the tracer
    writes the example's sizes there, and runtimes warn when they differ."""
    model = onnx.load(path)
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        for axis, dim in enumerate(dims):
            if axis != 1:
                dim.Clear()
                dim.dim_param = f'{output.name}_dim{axis}'
    onnx.save(model, path)


def _as_tuple(inputs: Union[Tensor, Sequence[Tensor]]) -> Tuple[Tensor, ...]:
    return (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)


def export_onnx(model: nn.Module, inputs: Union[Tensor, Sequence[Tensor]], path: str,
                input_names: Sequence[str] = ('input',),
                output_names: Optional[Sequence[str]] = None,
                dynamic_axes: Optional[Dict[str, Dict[int, str]]] = None,
                opset: int = DEFAULT_OPSET, exporter: str = 'torchscript',
                check: bool = True, verbose: bool = False) -> Dict:
    """Export ``model(*inputs)`` (an eval-mode module) to ``path``.

    Args:
        model: the module; SNN-MLP parts are made exportable for the duration
            (see :func:`~mmsnnmlp.deployment.exportable`).
        inputs: example input(s); float64 inputs with a float64 model give a
            float64 graph, whose convs, norms and GELUs are spelled with ops
            ONNX Runtime runs in float64 (its Conv, InstanceNormalization and
            Erf kernels are float32-only): for checking parity.
        input_names, output_names: graph names.
        dynamic_axes: ``{name: {axis: symbol}}``; default: batch, height and
            width of every 4-d input. Without a dynamic axis 2 or 3, the graph
            has the example's fixed H and W.
        opset: ONNX opset (17 and 18 are tested).
        exporter: 'torchscript' (``dynamo=False``, what mmdeploy uses) or
            'dynamo'.
        check: run :func:`check_onnx` on the result.

    Returns ``dict(path=, seconds=, exporter=, opset=, op_types=)``.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f'exporter must be one of {EXPORTERS}, got {exporter!r}')
    onnx = _require_onnx()
    inputs = _as_tuple(inputs)
    if dynamic_axes is None:
        dynamic_axes = {name: {0: 'batch', 2: 'height', 3: 'width'}
                        for name, x in zip(input_names, inputs) if x.dim() == 4}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    start = time.perf_counter()
    float64 = any(x.dtype == torch.float64 for x in inputs)
    with exportable(model, exporter, float64), torch.no_grad():
        if exporter == 'torchscript':
            torch.onnx.export(model, inputs, path, dynamo=False, opset_version=opset,
                              input_names=list(input_names),
                              output_names=list(output_names) if output_names else None,
                              dynamic_axes=dynamic_axes, do_constant_folding=True,
                              verbose=verbose)
        else:
            program = torch.onnx.export(
                model, inputs, dynamo=True, opset_version=opset, input_names=list(input_names),
                output_names=list(output_names) if output_names else None,
                dynamic_axes=dynamic_axes, verbose=verbose, report=False)
            # Scan bodies arrive as local functions in a private domain: inline them.
            import onnx.inliner
            proto = onnx.inliner.inline_local_functions(program.model_proto)
            onnx.save(proto, path)
    if dynamic_axes:
        _free_output_dims(onnx, path)
    info = dict(path=path, seconds=time.perf_counter() - start, exporter=exporter, opset=opset)
    if check:
        info.update(check_onnx(path))
    return info
