"""Run a trained SNN-MLP detector or segmentor on an image and save the drawing.

Uses the libraries' own inference APIs, picked from the config's default_scope:

* mmdet: ``DetInferencer`` (``--api inferencer``) or ``init_detector`` +
  ``inference_detector`` (``--api functional``);
* mmseg: ``MMSegInferencer`` or ``init_model`` + ``inference_model``.

Example:
    python tools/demo/image_demo.py IMAGE CONFIG CHECKPOINT --out-file result.jpg
"""
import argparse
import os
import os.path as osp
import sys

import mmcv
import numpy as np
from mmengine.config import Config

import mmsnnmlp  # noqa: F401  registers SNNMLP in mmdet and mmseg
from mmsnnmlp.models import safe_load
from mmsnnmlp.utils import library_of


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('img', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-file', default='result.jpg', help='where to save the drawing')
    parser.add_argument('--api', choices=['inferencer', 'functional'], default='functional')
    parser.add_argument('--device', default='cpu', help='cpu or cuda:0')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection score threshold')
    parser.add_argument('--opacity', type=float, default=0.5, help='segmentation overlay opacity')
    return parser.parse_args(argv)


def run_detection(args, image):
    from mmdet.apis import DetInferencer, inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    if args.api == 'inferencer':
        inferencer = DetInferencer(model=args.config, weights=args.checkpoint, device=args.device,
                                   show_progress=False)
        result = inferencer(image, return_vis=True, pred_score_thr=args.score_thr,
                            no_save_vis=True)
        scores = result['predictions'][0]['scores']
        return result['visualization'][0], sum(s >= args.score_thr for s in scores)
    model = init_detector(args.config, args.checkpoint, device=args.device)
    sample = inference_detector(model, image)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample('result', mmcv.bgr2rgb(image), data_sample=sample, draw_gt=False,
                              pred_score_thr=args.score_thr)
    kept = int((sample.pred_instances.scores >= args.score_thr).sum())
    return visualizer.get_image(), kept


def run_segmentation(args, image):
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    from mmseg.registry import VISUALIZERS
    if args.api == 'inferencer':
        inferencer = MMSegInferencer(model=args.config, weights=args.checkpoint,
                                     device=args.device)
        result = inferencer(image, return_vis=True, opacity=args.opacity)
        return result['visualization'], len(set(result['predictions'].ravel().tolist()))
    model = init_model(args.config, args.checkpoint, device=args.device)
    sample = inference_model(model, image)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    meta = dict(model.dataset_meta)
    if not meta.get('palette'):  # checkpoints from other tools may carry classes only
        rng = np.random.default_rng(42)
        meta['palette'] = rng.integers(0, 255, (len(meta['classes']), 3)).tolist()
    visualizer.dataset_meta = meta
    visualizer.alpha = args.opacity
    visualizer.add_datasample('result', mmcv.bgr2rgb(image), data_sample=sample, draw_gt=False)
    return visualizer.get_image(), len(sample.pred_sem_seg.data.unique())


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.img):
        sys.exit(f'Image not found: {args.img}')
    image = mmcv.imread(args.img)  # BGR; grayscale and RGBA become 3-channel BGR
    if image is None:
        sys.exit(f'Cannot decode image: {args.img}')
    library = library_of(Config.fromfile(args.config))
    try:
        safe_load(args.checkpoint)
    except (FileNotFoundError, RuntimeError) as err:
        sys.exit(f'Cannot use checkpoint: {err}')
    run = run_detection if library == 'mmdet' else run_segmentation
    drawing, count = run(args, image)  # RGB
    os.makedirs(osp.dirname(osp.abspath(args.out_file)), exist_ok=True)
    mmcv.imwrite(mmcv.rgb2bgr(drawing), args.out_file)
    what = 'objects above the threshold' if library == 'mmdet' else 'classes in the prediction'
    print(f'{count} {what}; drawing saved to {args.out_file}')


if __name__ == '__main__':
    main()
