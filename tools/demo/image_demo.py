"""Run a trained SNN-MLP detector or segmentor on an image and save the drawing.

Uses the libraries' own inference APIs, picked from the config's default_scope:

* mmdet: ``DetInferencer`` (``--api inferencer``) or ``init_detector`` +
  ``inference_detector`` (``--api functional``);
* mmseg: ``MMSegInferencer`` or ``init_model`` + ``inference_model``.

Example:
    python tools/demo/image_demo.py IMAGE CONFIG CHECKPOINT --out-file result.jpg
"""
import argparse
import os.path as osp
import sys

import cv2
import mmcv
import numpy as np
from mmengine.config import Config

import mmsnnmlp  # noqa: F401  registers SNNMLP, makes checkpoint I/O safe
from mmsnnmlp.checkpoint import check_state_dict_fits
from mmsnnmlp.engine.launch import library_of, warn_if_classes_differ
from mmsnnmlp.fileio import OutputPathError, atomic_open, check_writable
from mmsnnmlp.models import CheckpointError, safe_load


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


def check_fits(model, checkpoint, path: str) -> None:
    """Strict: the libraries load what fits and only log the rest, which
    would draw a half-random model's predictions."""
    try:
        check_state_dict_fits(model, checkpoint, path)
    except CheckpointError as err:
        sys.exit(f'Cannot use checkpoint: {err}')


def run_detection(args, image, checkpoint):
    from mmdet.apis import DetInferencer, inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    if args.api == 'inferencer':
        inferencer = DetInferencer(model=args.config, weights=args.checkpoint, device=args.device,
                                   show_progress=False)
        check_fits(inferencer.model, checkpoint, args.checkpoint)
        # by path: the inferencer draws an array input as if it were RGB
        result = inferencer(args.img, return_vis=True, pred_score_thr=args.score_thr,
                            no_save_vis=True)
        scores = result['predictions'][0]['scores']
        return result['visualization'][0], sum(s >= args.score_thr for s in scores)
    model = init_detector(args.config, args.checkpoint, device=args.device)
    check_fits(model, checkpoint, args.checkpoint)
    sample = inference_detector(model, image)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample('result', mmcv.bgr2rgb(image), data_sample=sample, draw_gt=False,
                              pred_score_thr=args.score_thr)
    kept = int((sample.pred_instances.scores >= args.score_thr).sum())
    return visualizer.get_image(), kept


def run_segmentation(args, image, checkpoint):
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    from mmseg.registry import VISUALIZERS
    if args.api == 'inferencer':
        inferencer = MMSegInferencer(model=args.config, weights=args.checkpoint,
                                     device=args.device)
        check_fits(inferencer.model, checkpoint, args.checkpoint)
        sample = inferencer(args.img, return_datasamples=True)
        # numpy labels: mmseg's drawing reads a 1-pixel torch mask as an index
        sample.pred_sem_seg = sample.pred_sem_seg.cpu().numpy()
        drawing = inferencer.visualize([args.img], [sample], return_vis=True,
                                       opacity=args.opacity)[0]
        return drawing, len(np.unique(sample.pred_sem_seg.data))
    model = init_model(args.config, args.checkpoint, device=args.device)
    check_fits(model, checkpoint, args.checkpoint)
    sample = inference_model(model, image)
    sample.pred_sem_seg = sample.pred_sem_seg.cpu().numpy()  # as above
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    meta = dict(model.dataset_meta)
    if not meta.get('palette'):  # checkpoints from other tools may carry classes only
        rng = np.random.default_rng(42)
        meta['palette'] = rng.integers(0, 255, (len(meta['classes']), 3)).tolist()
    visualizer.dataset_meta = meta
    visualizer.alpha = args.opacity
    visualizer.add_datasample('result', mmcv.bgr2rgb(image), data_sample=sample, draw_gt=False)
    return visualizer.get_image(), len(np.unique(sample.pred_sem_seg.data))


def read_image(path: str) -> np.ndarray:
    """The image as BGR, or exit naming what is wrong with the file."""
    if not osp.isfile(path):
        sys.exit(f'Image not found: {path}')
    if osp.getsize(path) == 0:
        sys.exit(f'Image file is empty (0 bytes): {path}')
    try:
        image = mmcv.imread(path)  # BGR; grayscale and RGBA become 3-channel BGR
    except (cv2.error, OSError, ValueError) as err:
        sys.exit(f'Cannot decode image: {path} ({err})')
    if image is None:
        sys.exit(f'Cannot decode image: {path}')
    return image


def check_out_file(out_file: str, img: str) -> None:
    """Exit before inference if the drawing cannot, or must not, go to out_file."""
    if osp.isdir(out_file):
        sys.exit(f'--out-file is a folder: {out_file}')
    # samefile: through symlinks, hard links, relative paths, case-insensitive file systems
    if osp.exists(out_file) and osp.samefile(out_file, img):
        sys.exit(f'--out-file {out_file} is the input image {img}; refusing to overwrite it')
    if not cv2.haveImageWriter(out_file):
        sys.exit(f'--out-file {out_file}: cannot write images of this type; use .jpg or .png')
    try:  # a symlinked --out-file is written at its target
        check_writable(osp.realpath(out_file) if osp.islink(out_file) else out_file,
                       what='--out-file')
    except OutputPathError as err:
        sys.exit(str(err))


def save_drawing(drawing_rgb: np.ndarray, out_file: str) -> None:
    ok, data = cv2.imencode(osp.splitext(out_file)[1], mmcv.rgb2bgr(drawing_rgb))
    if not ok:
        sys.exit(f'Cannot encode the drawing for {out_file}')
    # atomic, and through a symlinked --out-file to its target, as a plain write goes
    with atomic_open(osp.realpath(out_file), 'wb') as f:
        f.write(data.tobytes())


def main(argv=None):
    args = parse_args(argv)
    image = read_image(args.img)
    check_out_file(args.out_file, args.img)
    cfg = Config.fromfile(args.config)
    library = library_of(cfg)
    try:
        checkpoint = safe_load(args.checkpoint)
    except (FileNotFoundError, CheckpointError) as err:
        sys.exit(f'Cannot use checkpoint: {err}')
    # the drawing names the checkpoint's classes; a differing config is a mix-up
    warn_if_classes_differ(cfg, checkpoint, args.checkpoint)
    run = run_detection if library == 'mmdet' else run_segmentation
    drawing, count = run(args, image, checkpoint)  # RGB
    save_drawing(drawing, args.out_file)
    what = 'objects above the threshold' if library == 'mmdet' else 'classes in the prediction'
    print(f'{count} {what}; drawing saved to {args.out_file}')


if __name__ == '__main__':
    main()
