"""Detectors (mmdet) and segmentors (mmseg) with their tensor parts in ONNX.

As mmdeploy splits them: the networks run in the runtime, the steps with
data-dependent shapes and loops stay in Python, done by mmdet's and mmseg's
own code (so the scores are computed exactly as for the PyTorch model):

* two-stage detectors (Mask R-CNN, Cascade Mask R-CNN): graph ``feat``
  (backbone + neck, image -> FPN levels), graph ``rpn_head`` (levels -> class
  scores and box deltas), one graph per RoI box head and per mask head (RoI
  features -> scores/deltas, mask logits). Proposal NMS, RoI Align, box
  decoding, final NMS and mask pasting run in Python (mmcv/torchvision ops).
* single-stage detectors: graph ``feat`` and graph ``bbox_head``.
* encoder-decoder segmentors (UperNet): graph ``seg_logits`` (image -> logits
  at the decode head's resolution); resizing to the image and the argmax run
  in Python. (The pyramid pooling exports for any size: see
  :mod:`.exportable`.)

:func:`onnx_detector` / :func:`onnx_segmentor` export these parts of a model
and put runtime-backed stand-ins (:class:`~.runtime.OnnxModule`) in place of
the PyTorch parts of that same model, which then runs mmdet's/mmseg's
``test_step`` and evaluators unchanged.
"""
import functools
import os.path as osp
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .onnx_export import DEFAULT_OPSET, export_onnx
from .runtime import OnnxModule, Runner


class _Features(nn.Module):
    """image -> tuple of feature maps (backbone + neck)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.train(model.training)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        return tuple(self.model.extract_feat(x))


class _SegLogits(nn.Module):
    """image -> decode head logits (before resizing to the image)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.train(model.training)

    def forward(self, x: Tensor) -> Tensor:
        return self.model.decode_head.forward(self.model.extract_feat(x))


class _FlatHead(nn.Module):
    """A dense head taking a tuple of levels, returning flat outputs."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head
        self.train(head.training)

    def forward(self, *levels: Tensor) -> Tuple[Tensor, ...]:
        outs = self.head.forward(tuple(levels))
        flat = []
        for item in outs:
            flat += list(item) if isinstance(item, (list, tuple)) else [item]
        return tuple(flat)


def _capture(model: nn.Module, data: Dict, modules: Dict[str, nn.Module]) -> Dict[str, tuple]:
    """The positional inputs each of ``modules`` gets in ``model.test_step(data)``."""
    seen, handles = {}, []
    for name, module in modules.items():
        def hook(_, args, name=name):
            seen.setdefault(name, args)
        handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model.test_step(data)
    finally:
        for handle in handles:
            handle.remove()
    missing = sorted(set(modules) - set(seen))
    if missing:
        raise RuntimeError(f'the example batch never ran {missing} (no detections? use an '
                           'image with objects, or a lower score threshold)')
    return seen


def _image_axes(names: List[str]) -> Dict[str, Dict[int, str]]:
    return {name: {0: 'batch', 2: f'{name}_height', 3: f'{name}_width'} for name in names}


class _Exporter:
    """Export parts of one model to ``workdir`` and load each in ``backend``."""

    def __init__(self, workdir: str, opset: int, exporter: str, backend: str):
        self.workdir, self.opset, self.exporter, self.backend = workdir, opset, exporter, backend
        self.files: Dict[str, str] = {}

    def __call__(self, name: str, module: nn.Module, inputs: tuple,
                 dynamic_axes: Dict[str, Dict[int, str]], input_names: List[str],
                 unflatten: Optional[Callable] = None, fallback: Optional[nn.Module] = None
                 ) -> OnnxModule:
        path = osp.join(self.workdir, f'{name}.onnx')
        export_onnx(module, inputs, path, input_names=input_names, dynamic_axes=dynamic_axes,
                    opset=self.opset, exporter=self.exporter)
        self.files[name] = path
        return _Guarded(OnnxModule(Runner(path, self.backend), unflatten), fallback)


class _Guarded(nn.Module):
    """Runs the PyTorch ``fallback`` for empty inputs (no RoIs), where some
    runtimes reject zero-sized tensors; the result is empty either way."""

    def __init__(self, onnx: OnnxModule, fallback: Optional[nn.Module]):
        super().__init__()
        self.onnx = onnx
        self.fallback = [fallback]  # a list: not a submodule, not in state_dict

    def forward(self, *inputs):
        if self.fallback[0] is not None and inputs[0].shape[0] == 0:
            return self.fallback[0](*inputs)
        return self.onnx(*inputs)


def _preprocess(model: nn.Module, data: Dict) -> Tensor:
    return model.data_preprocessor(data, False)['inputs']


def onnx_detector(model: nn.Module, data: Dict, workdir: str, backend: str = 'onnxruntime',
                  opset: int = DEFAULT_OPSET, exporter: str = 'torchscript'
                  ) -> Dict[str, str]:
    """Export the tensor parts of an mmdet detector (eval mode) and switch
    ``model`` to run them in ``backend``. ``data`` is one batch as the test
    dataloader yields it (for the example inputs; it should produce at least
    one detection). Returns ``{part: .onnx path}``."""
    model.eval()
    export = _Exporter(workdir, opset, exporter, backend)
    roi_head = getattr(model, 'roi_head', None)
    heads: Dict[str, nn.Module] = {}
    if getattr(model, 'rpn_head', None) is not None:
        heads['rpn_head'] = model.rpn_head
    elif getattr(model, 'bbox_head', None) is not None:
        heads['bbox_head'] = model.bbox_head
    if roi_head is not None:
        for attr in ('bbox_head', 'mask_head'):
            head = getattr(roi_head, attr, None)
            if head is None:
                continue
            for i, stage in enumerate(head if isinstance(head, nn.ModuleList) else [head]):
                heads[f'roi_{attr}{i}'] = stage
    inputs = _capture(model, data, heads)
    image = _preprocess(model, data)

    # backbone + neck
    features = _Features(model)
    with torch.no_grad():
        levels = features(image)
    model.extract_feat = export('feat', features, (image,), _image_axes(['input']), ['input'])

    level_names = [f'level{i}' for i in range(len(levels))]
    for name, head in heads.items():
        if name in ('rpn_head', 'bbox_head'):  # dense heads: levels -> per-level outputs
            stand_in = export(name, _FlatHead(head), tuple(levels), _image_axes(level_names),
                              level_names, functools.partial(_per_level, len(levels)))
            head.forward = functools.partial(_call_levels, stand_in)
        else:  # RoI heads: (num_rois, C, S, S) -> tensors
            head.forward = export(name, head, (inputs[name][0],), {'rois': {0: 'num_rois'}},
                                  ['rois'], fallback=_Original(head))
    return export.files


def _per_level(num_levels: int, outs: List[Tensor]) -> tuple:
    """Flat runtime outputs -> one tuple per kind (scores, deltas, ...)."""
    return tuple(tuple(outs[i:i + num_levels]) for i in range(0, len(outs), num_levels))


def _call_levels(stand_in: nn.Module, levels) -> tuple:
    return stand_in(*levels)


class _Original(nn.Module):
    """A module's class forward, for when its instance forward is replaced."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = [module]

    def forward(self, *inputs):
        module = self.module[0]
        return type(module).forward(module, *inputs)


def onnx_segmentor(model: nn.Module, data: Dict, workdir: str, backend: str = 'onnxruntime',
                   opset: int = DEFAULT_OPSET, exporter: str = 'torchscript'
                   ) -> Dict[str, str]:
    """Export an mmseg encoder-decoder (backbone + decode head, eval mode;
    dynamic batch, H and W) and switch ``model`` to run it in ``backend``;
    resizing to the image and the argmax stay in mmseg's Python code
    (``predict_by_feat``, ``postprocess_result``)."""
    model.eval()
    export = _Exporter(workdir, opset, exporter, backend)
    stand_in = export('seg_logits', _SegLogits(model), (_preprocess(model, data),),
                      _image_axes(['input']), ['input'])
    model.encode_decode = functools.partial(_encode_decode, model, stand_in)
    return export.files


def _encode_decode(model: nn.Module, stand_in: nn.Module, inputs: Tensor,
                   batch_img_metas: List[dict]) -> Tensor:
    return model.decode_head.predict_by_feat(stand_in(inputs), batch_img_metas)
