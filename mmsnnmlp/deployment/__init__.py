"""Deployment: ONNX export of SNN-MLP backbones, detectors and segmentors,
run in ONNX Runtime and OpenVINO, with parity measures against PyTorch.

Needs the ``deploy`` extra (onnx, onnxruntime; openvino optional)."""
from .exportable import EXPORTERS, ExportError, check_exportable, exportable
from .onnx_export import check_onnx, export_onnx

__all__ = ['EXPORTERS', 'ExportError', 'check_exportable', 'check_onnx', 'export_onnx',
           'exportable']
