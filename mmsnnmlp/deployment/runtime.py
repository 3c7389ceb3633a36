"""Run exported ONNX files in ONNX Runtime or OpenVINO (CPU)."""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

BACKENDS = ('onnxruntime', 'openvino')


def _numpy(x: Union[Tensor, np.ndarray]) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


class Runner:
    """One ONNX file loaded in a runtime; ``runner(*inputs)`` returns a list
    of numpy outputs in the file's output order.

    Args:
        path (str): the .onnx file.
        backend (str): 'onnxruntime' or 'openvino'.
        threads (int, optional): intra-op threads (default: the runtime's).
    """

    def __init__(self, path: str, backend: str = 'onnxruntime', threads: Optional[int] = None):
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
        self.path, self.backend = path, backend
        if backend == 'onnxruntime':
            import onnxruntime as ort
            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            options.log_severity_level = 3  # no warnings about shape hints
            self._session = ort.InferenceSession(path, options,
                                                 providers=['CPUExecutionProvider'])
            self.input_names = [i.name for i in self._session.get_inputs()]
            self.output_names = [o.name for o in self._session.get_outputs()]
        else:
            try:
                import openvino as ov
            except ImportError as err:
                raise ImportError('the openvino backend needs the openvino package '
                                  '(pip install openvino)') from err
            core = ov.Core()
            config = {'INFERENCE_NUM_THREADS': threads} if threads else {}
            # f32 inference: OpenVINO would pick bf16/f16 on CPUs that have it
            config['INFERENCE_PRECISION_HINT'] = 'f32'
            model = core.read_model(path)
            self._compiled = core.compile_model(model, 'CPU', config)
            self._request = self._compiled.create_infer_request()
            self.input_names = [i.any_name for i in self._compiled.inputs]
            self.output_names = [o.any_name for o in self._compiled.outputs]

    def __call__(self, *inputs) -> List[np.ndarray]:
        feeds = {name: _numpy(x) for name, x in zip(self.input_names, inputs)}
        if self.backend == 'onnxruntime':
            return self._session.run(None, feeds)
        results = self._request.infer(feeds)
        return [np.asarray(results[out]) for out in self._compiled.outputs]


class OnnxModule(nn.Module):
    """A :class:`Runner` standing in for a PyTorch submodule: takes tensors,
    returns tensors on the input's device, in the structure ``unflatten``
    makes of the flat output list (default: one tensor, or a tuple)."""

    def __init__(self, runner: Runner, unflatten=None):
        super().__init__()
        self.runner, self.unflatten = runner, unflatten

    def forward(self, *inputs):
        flat = []
        for x in inputs:
            flat += list(x) if isinstance(x, (list, tuple)) else [x]
        device = flat[0].device
        outs = [torch.from_numpy(np.ascontiguousarray(o)).to(device) for o in self.runner(*flat)]
        if self.unflatten is not None:
            return self.unflatten(outs)
        return outs[0] if len(outs) == 1 else tuple(outs)


def available_backends() -> Dict[str, bool]:
    """Which runtimes import here."""
    found = {}
    for backend, module in (('onnxruntime', 'onnxruntime'), ('openvino', 'openvino')):
        try:
            __import__(module)
            found[backend] = True
        except ImportError:
            found[backend] = False
    return found


def run_torch(model: nn.Module, inputs: Sequence[Tensor]) -> List[np.ndarray]:
    """PyTorch outputs of ``model(*inputs)`` as a flat list of numpy arrays."""
    with torch.no_grad():
        out = model(*inputs)
    out = [out] if isinstance(out, Tensor) else list(out)
    return [_numpy(o) for o in out]
