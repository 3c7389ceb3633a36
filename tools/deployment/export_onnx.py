"""Export a detector, segmentor or timm classifier to ONNX, run it in ONNX
Runtime (or OpenVINO) and compare with PyTorch.

    # Mask R-CNN / Cascade Mask R-CNN: feat + rpn_head + RoI head graphs
    python tools/deployment/export_onnx.py configs/det/<config>.py --checkpoint det.pth \
        --image demo.jpg --out work_dirs/onnx_det
    # UperNet: one graph image -> logits
    python tools/deployment/export_onnx.py configs/seg/<config>.py --checkpoint seg.pth
    # the backbone of a det/seg config alone (dynamic batch/H/W, parity table)
    python tools/deployment/export_onnx.py configs/det/<config>.py --backbone-only
    # a timm classifier (SNN-MLP: the shape is read off the checkpoint; dynamic batch)
    python tools/deployment/export_onnx.py snnmlp_tiny --checkpoint snnmlp_tiny_81.88.pt
    # ... or random weights with other timm arguments
    python tools/deployment/export_onnx.py snnmlp_tiny --size 64x64 \
        --model-args embed_dim=16 depths=1,1,1,1 num_classes=10

Without ``--image`` a synthetic image (coloured shapes on noise) is used.
The PyTorch and runtime results are printed side by side: per-output
parity (backbone, classifier), or detections / pixels that agree.
"""
import argparse
import os
import os.path as osp
import tempfile

import numpy as np
import torch
from mmengine.config import DictAction

from mmsnnmlp.deployment import export_onnx
from mmsnnmlp.deployment.parity import compare, report, within_float32_bound
from mmsnnmlp.deployment.runtime import BACKENDS, Runner, run_torch


def parse_args():
    parser = argparse.ArgumentParser(description='Export to ONNX and compare with PyTorch')
    parser.add_argument('model', help='det/seg config file, or a timm model name')
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--image', default=None, help='default: a synthetic image')
    parser.add_argument('--out', default='work_dirs/onnx', help='folder for the .onnx files')
    parser.add_argument('--backend', choices=BACKENDS, default='onnxruntime')
    parser.add_argument('--exporter', choices=('torchscript', 'dynamo'), default='torchscript')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--backbone-only', action='store_true',
                        help='export only the backbone of a det/seg config')
    parser.add_argument('--size', default='224x224',
                        help='HxW of the synthetic input of a classifier or backbone')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='key=value overrides of the config')
    parser.add_argument('--model-args', nargs='+', action=DictAction, default={},
                        help='key=value arguments of timm.create_model (classifiers)')
    return parser.parse_args()


def synthetic_image(path: str, h: int = 480, w: int = 640) -> str:
    import cv2
    rng = np.random.default_rng(0)
    img = rng.normal(128, 30, (h, w, 3)).clip(0, 255).astype(np.uint8)
    cv2.circle(img, (w // 3, h // 2), h // 6, (230, 60, 60), -1)
    cv2.rectangle(img, (w // 2, h // 4), (w // 2 + h // 4, h // 2), (40, 200, 40), -1)
    cv2.imwrite(path, img)
    return path


def _size(text):
    h, w = (int(v) for v in text.lower().split('x'))
    return h, w


def _compare_tensors(model, x, path, backend):
    runner = Runner(path, backend)
    parities = compare(runner(x), run_torch(model, [x]), runner.output_names)
    print(report(parities, f'{backend} vs PyTorch, input {tuple(x.shape)}'))
    print('float32 bound (share off by > 1e-4 of scale below 0.1%):',
          'met' if within_float32_bound(parities) else 'NOT met')


def _timm_classifier(args):
    import timm

    from mmsnnmlp.models.snnmlp_timm import TIMM_VARIANTS, create_from_checkpoint
    if args.checkpoint and args.model in TIMM_VARIANTS:
        # the released layouts and custom shapes, read safely (not timm's loader)
        model, variant = create_from_checkpoint(args.checkpoint, **args.model_args)
        print(f'{args.checkpoint}: {variant or "a custom shape"} '
              f'(embed_dim {model.embed_dim}, depths {tuple(model.depths)})')
        return model
    return timm.create_model(args.model, pretrained=False, checkpoint_path=args.checkpoint or '',
                             **args.model_args).eval()


def classifier(args):
    import mmsnnmlp  # noqa: F401  (registers the timm models)
    model = _timm_classifier(args).eval()
    h, w = _size(args.size)
    x = torch.randn(1, 3, h, w)
    path = osp.join(args.out, f'{args.model}.onnx')
    info = export_onnx(model, x, path, output_names=['logits'],
                       dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}},
                       opset=args.opset, exporter=args.exporter)
    print(f"wrote {path} ({info['seconds']:.1f} s, opset {info['opset']}, standard ops only, "
          f"input {h}x{w}, dynamic batch)")
    for batch in (1, 2):
        _compare_tensors(model, torch.randn(batch, 3, h, w), path, args.backend)


def _load_data(model, cfg, image):
    from mmengine.dataset import Compose, pseudo_collate
    pipeline = [dict(t) for t in cfg.test_dataloader.dataset.pipeline
                if t['type'] != 'LoadAnnotations']
    pipeline[0]['type'] = 'LoadImageFromFile'
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return pseudo_collate([Compose(pipeline)(dict(img_path=image, img_id=0))])


def dense(args):
    from mmengine import Config

    from mmsnnmlp.deployment.dense import onnx_detector, onnx_segmentor
    cfg = Config.fromfile(args.model)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    is_det = cfg.get('default_scope', 'mmdet') == 'mmdet'
    if is_det:
        from mmdet.apis import init_detector as init
    else:
        from mmseg.apis import init_model as init
    model = init(cfg, args.checkpoint, device='cpu').eval()
    if args.backbone_only:
        h, w = _size(args.size)
        x = torch.randn(1, 3, h, w)
        path = osp.join(args.out, 'backbone.onnx')
        info = export_onnx(model.backbone, x, path, opset=args.opset, exporter=args.exporter)
        print(f"wrote {path} ({info['seconds']:.1f} s, dynamic batch/H/W, standard ops only)")
        for size in [(h, w), (h + 37, w - 21)]:
            _compare_tensors(model.backbone, torch.randn(1, 3, *size), path, args.backend)
        return
    image = args.image or synthetic_image(osp.join(tempfile.mkdtemp(), 'synthetic.jpg'))
    data = _load_data(model, cfg, image)
    with torch.no_grad():
        expected = model.test_step(data)[0]
    export = onnx_detector if is_det else onnx_segmentor
    files = export(model, data, args.out, backend=args.backend, opset=args.opset,
                   exporter=args.exporter)
    print('wrote ' + ', '.join(f'{k}: {v}' for k, v in files.items()))
    with torch.no_grad():
        got = model.test_step(data)[0]
    if is_det:
        a, b = expected.pred_instances, got.pred_instances
        print(f'detections: PyTorch {len(a)}, {args.backend} {len(b)}')
        n = min(len(a), len(b))
        if n:
            print(f'first {n}: max box difference {(a.bboxes[:n] - b.bboxes[:n]).abs().max():.3g} '
                  f'px, max score difference {(a.scores[:n] - b.scores[:n]).abs().max():.3g}, '
                  f'labels equal {bool((a.labels[:n] == b.labels[:n]).all())}')
            if 'masks' in a:
                agree = (a.masks[:n] == b.masks[:n]).float().mean()
                print(f'mask pixels that agree: {100 * agree:.4f}%')
    else:
        agree = (expected.pred_sem_seg.data == got.pred_sem_seg.data).float().mean()
        print(f'segmentation pixels that agree with PyTorch: {100 * agree:.4f}%')


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    if osp.isfile(args.model):
        dense(args)
    else:
        classifier(args)


if __name__ == '__main__':
    main()
