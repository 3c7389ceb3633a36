"""Export to ONNX and check that the file holds standard ONNX ops only."""
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
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


def _free_output_dims(model) -> None:
    """Make every output dim but the channel dim (1) symbolic: the tracer
    writes the example's sizes there, and runtimes warn when they differ."""
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        for axis, dim in enumerate(dims):
            if axis != 1:
                dim.Clear()
                dim.dim_param = f'{output.name}_dim{axis}'


def _rename_inputs(graph, renamed: Dict[str, str]) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
        for attr in node.attribute:  # Loop/Scan bodies read outer names too
            if attr.HasField('g'):
                _rename_inputs(attr.g, renamed)
            for sub in attr.graphs:
                _rename_inputs(sub, renamed)


def _drop_initializer_identities(model) -> None:
    """Let consumers read initializers directly instead of through the
    ``Identity`` nodes the TorchScript exporter adds when it merges equal
    initializers: ONNX Runtime 1.32's basic graph optimizations reject some
    of those graphs ("... is not a graph input, initializer, or output of a
    previous node")."""
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    renamed = {node.output[0]: node.input[0] for node in graph.node
               if node.op_type == 'Identity' and node.input[0] in initializers
               and node.output[0] not in outputs}
    if not renamed:
        return
    kept = [node for node in graph.node
            if not (node.op_type == 'Identity' and node.output[0] in renamed)]
    del graph.node[:]
    graph.node.extend(kept)
    _rename_inputs(graph, renamed)


def _constant(graph, name: str, producers: Dict, initializers: Dict):
    """The value of ``name`` as a numpy array if it is an initializer or a
    Constant node's output, else None."""
    from onnx import numpy_helper
    if name in initializers:
        return numpy_helper.to_array(initializers[name])
    node = producers.get(name)
    if node is not None and node.op_type == 'Constant':
        for attr in node.attribute:
            if attr.name == 'value':
                return numpy_helper.to_array(attr.t)
    return None


def _channel_vector(value, channels: int):
    """``value`` as a per-channel vector for an NCHW tensor (shape (C,1,1),
    (1,C,1,1), or one value), else None."""
    if value is None:
        return None
    if value.size == 1:
        return np.full(channels, value.reshape(()), dtype=value.dtype)
    shape = list(value.shape)
    if len(shape) >= 3 and shape[-2:] == [1, 1] and shape[-3] == channels \
            and all(d == 1 for d in shape[:-3]):
        return value.reshape(channels)
    return None


def fold_affine_into_convs(model) -> int:
    """Rewrite ``Conv(x * a + b)`` as ``Conv'(x)`` where a and b are constant
    per-channel vectors and the Conv has no padding and one group (the
    norms' affine before a 1x1 conv): ``W' = W * a`` along the input
    channels, ``B' = B + sum(W * b)``. Only where the Mul and the Add feed
    nothing else. Exact up to float rounding. Returns how many were folded."""
    from onnx import helper, numpy_helper
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers: Dict[str, int] = {}
    for node in _all_nodes(graph):
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    for out in graph.output:
        consumers[out.name] = consumers.get(out.name, 0) + 1
    removed, folded = set(), 0
    for conv in graph.node:
        if conv.op_type != 'Conv' or conv.input[1] not in initializers:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        if attrs.get('group', 1) != 1 or any(attrs.get('pads', [0])) or \
                attrs.get('auto_pad', b'NOTSET') not in (b'NOTSET', b'VALID'):
            continue
        add = producers.get(conv.input[0])
        if add is None or add.op_type != 'Add' or consumers.get(add.output[0]) != 1:
            continue
        weight = numpy_helper.to_array(initializers[conv.input[1]])
        channels = weight.shape[1]
        for mul_in, b_in in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
            shift = _channel_vector(_constant(graph, b_in, producers, initializers), channels)
            mul = producers.get(mul_in)
            if shift is not None and mul is not None and mul.op_type == 'Mul' \
                    and consumers.get(mul.output[0]) == 1:
                break
        else:
            continue
        for x_in, a_in in ((mul.input[0], mul.input[1]), (mul.input[1], mul.input[0])):
            scale = _channel_vector(_constant(graph, a_in, producers, initializers), channels)
            if scale is not None:
                break
        else:
            continue
        w64 = weight.astype(np.float64)
        bias = (numpy_helper.to_array(initializers[conv.input[2]]).astype(np.float64)
                if len(conv.input) > 2 and conv.input[2] else np.zeros(weight.shape[0]))
        new_w = w64 * scale.astype(np.float64).reshape(1, -1, *([1] * (weight.ndim - 2)))
        new_b = bias + (w64.sum(axis=tuple(range(2, w64.ndim))) @ shift.astype(np.float64))
        names = (f'{conv.name or conv.output[0]}_folded_weight',
                 f'{conv.name or conv.output[0]}_folded_bias')
        for name, value in zip(names, (new_w, new_b)):
            graph.initializer.append(numpy_helper.from_array(value.astype(weight.dtype), name))
        del conv.input[:]
        conv.input.extend([x_in, *names])
        removed.update([id(add), id(mul)])
        folded += 1
    if removed:
        kept = [node for node in graph.node if id(node) not in removed]
        del graph.node[:]
        graph.node.extend(kept)
        used = {name for node in _all_nodes(graph) for name in node.input}
        unused = [t for t in graph.initializer if t.name not in used]
        for t in unused:
            graph.initializer.remove(t)
    return folded


def _as_tuple(inputs: Union[Tensor, Sequence[Tensor]]) -> Tuple[Tensor, ...]:
    return (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)


def export_onnx(model: nn.Module, inputs: Union[Tensor, Sequence[Tensor]], path: str,
                input_names: Sequence[str] = ('input',),
                output_names: Optional[Sequence[str]] = None,
                dynamic_axes: Optional[Dict[str, Dict[int, str]]] = None,
                opset: int = DEFAULT_OPSET, exporter: str = 'torchscript',
                check: bool = True, verbose: bool = False, optimize: bool = True) -> Dict:
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
        optimize: fold the norms' affine into the 1x1 convs after them
            (:func:`fold_affine_into_convs`).

    Returns ``dict(path=, seconds=, exporter=, opset=, static=, folded=,
    op_types=)`` (``static``: fixed H and W; ``folded``: affines folded).
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
    # no dynamic H or W: a graph for the example's size only, which may branch on it
    static = all(2 not in axes and 3 not in axes for axes in dynamic_axes.values())
    with exportable(model, exporter, float64, static), torch.no_grad():
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
    proto = onnx.load(path)
    _drop_initializer_identities(proto)
    folded = fold_affine_into_convs(proto) if optimize else 0
    if dynamic_axes:
        _free_output_dims(proto)
    onnx.save(proto, path)
    info = dict(path=path, seconds=time.perf_counter() - start, exporter=exporter, opset=opset,
                static=static, folded=folded)
    if check:
        info.update(check_onnx(path))
    return info
