"""The main job on built-in data: SNN-MLP Mask R-CNN and UperNet, end to end on CPU.

1. writes the synthetic COCO/ADE20K-layout data (tools/misc/make_toy_data.py);
2. trains the toy Mask R-CNN and the toy UperNet with tools/train.py;
3. evaluates them with tools/test.py (COCO bbox/segm mAP, mIoU);
4. runs the mmdet and mmseg inference APIs on a val image (tools/demo/image_demo.py);
5. looks inside the trained UperNet's LIF neurons on an ADE20K val image
   (tools/analysis_tools/visualize_lif.py: lif_visualization.png, firing_rates.json);
6. plots the loss curves; prints scores and wall times.

Every step is the same command a user would type. Example:
    python tools/misc/toy_demo.py --work-dir work_dirs/toy_demo
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

# the repo, or mmsnnmlp/.mim in an installed package: tools/ and configs/ side by side
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET_CONFIG = osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py')
SEG_CONFIG = osp.join(ROOT, 'configs/toy/snnmlp-toy_upernet_toy-ade.py')


def run(cmd, log_path):
    """Run tools/CMD[0] in the current directory, streaming its output to the
    console and a log."""
    cmd = [osp.join(ROOT, 'tools', cmd[0])] + cmd[1:]
    print('$ ' + ' '.join(cmd), flush=True)
    start = time.time()
    with open(log_path, 'w') as log:
        proc = subprocess.Popen([sys.executable] + cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            log.write(line)
            if ' - mmengine - INFO - ' in line and ('Epoch(' in line or 'Iter(' in line):
                print('  ' + line.split(' - INFO - ')[-1].rstrip()[:150], flush=True)
            elif 'Error' in line or line.startswith(('Data check failed', 'Cannot')):
                print('  ' + line.rstrip(), flush=True)
        proc.wait()
    if proc.returncode:
        raise SystemExit(f'step failed ({proc.returncode}): {" ".join(cmd)}; log: {log_path}')
    return time.time() - start


def latest_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def loss_history(work_dir):
    """(iteration, loss) pairs from mmengine's scalars.json of the latest run."""
    runs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    points = []
    if runs:
        with open(runs[-1]) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss' in rec and 'iter' in rec:
                    points.append((rec['iter'] if 'epoch' not in rec else rec['step'],
                                   rec['loss']))
    return points


def plot_losses(curves, out_file):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.5))
    for ax, (title, points) in zip(axes, curves.items()):
        if points:
            ax.plot(*zip(*points))
        ax.set_title(title)
        ax.set_xlabel('iteration')
        ax.set_ylabel('training loss')
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/toy_demo')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--det-epochs', type=int, default=None, help='override the toy schedule')
    parser.add_argument('--seg-iters', type=int, default=None, help='override the toy schedule')
    args = parser.parse_args(argv)
    work = osp.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    data = osp.abspath(osp.join('data', 'toy'))  # where the toy configs look (relative paths)
    t0 = time.time()
    times = {}

    times['data'] = run(['misc/make_toy_data.py', '--out', data, '--seed', str(args.seed)],
                        osp.join(work, 'make_data.log'))
    det_dir, seg_dir = osp.join(work, 'det'), osp.join(work, 'seg')
    det_opts = [f'randomness.seed={args.seed}']
    if args.det_epochs:
        det_opts += [f'train_cfg.max_epochs={args.det_epochs}',
                     f'train_cfg.val_interval={args.det_epochs}',
                     f'default_hooks.checkpoint.interval={args.det_epochs}']
    seg_opts = [f'randomness.seed={args.seed}']
    if args.seg_iters:
        warmup = max(1, min(30, args.seg_iters // 10))  # the toy config warms up for 30
        seg_opts += [f'train_cfg.max_iters={args.seg_iters}',
                     f'train_cfg.val_interval={args.seg_iters}',
                     f'default_hooks.checkpoint.interval={args.seg_iters}',
                     f'param_scheduler.0.end={warmup}', f'param_scheduler.1.begin={warmup}',
                     f'param_scheduler.1.end={args.seg_iters}']

    metrics = {}
    for name, config, wdir, opts in (('det', DET_CONFIG, det_dir, det_opts),
                                     ('seg', SEG_CONFIG, seg_dir, seg_opts)):
        # --force: re-running the demo replaces its own earlier outputs
        times[f'{name}_train'] = run(['train.py', config, '--work-dir', wdir, '--force',
                                      '--cfg-options'] + opts, osp.join(work, f'{name}_train.log'))
        ckpt = latest_checkpoint(wdir)
        metrics_file = osp.join(wdir, 'test_metrics.json')
        times[f'{name}_test'] = run(['test.py', config, ckpt, '--work-dir', wdir, '--force',
                                     '--show-dir', 'test_drawings', '--metrics-json', metrics_file,
                                     '--cfg-options'] + opts, osp.join(work, f'{name}_test.log'))
        with open(metrics_file) as f:
            metrics[name] = json.load(f)

    image = sorted(glob.glob(f'{data}/coco/val2017/*.jpg'))[0]
    for name, config, wdir, api in (('det', DET_CONFIG, det_dir, 'inferencer'),
                                    ('seg', SEG_CONFIG, seg_dir, 'functional')):
        run(['demo/image_demo.py', image, config, latest_checkpoint(wdir), '--api', api,
             '--out-file', osp.join(work, f'{name}_prediction.png')],
            osp.join(work, f'{name}_demo.log'))
    seg_image = sorted(glob.glob(f'{data}/ade/ADEChallengeData2016/images/validation/*.jpg'))[0]
    times['lif_visualization'] = run(
        ['analysis_tools/visualize_lif.py', seg_image, '--config', SEG_CONFIG,
         '--checkpoint', latest_checkpoint(seg_dir), '--out-dir', work],
        osp.join(work, 'lif_visualization.log'))
    with open(osp.join(work, 'firing_rates.json')) as f:
        firing_rates = {block: round(v['firing_rate'], 4)
                        for block, v in json.load(f)['blocks'].items()}
    plot_losses({'Mask R-CNN (toy COCO)': loss_history(det_dir),
                 'UperNet (toy ADE20K)': loss_history(seg_dir)},
                osp.join(work, 'loss_curves.png'))

    det, seg = metrics['det'], metrics['seg']
    summary = {
        'coco/bbox_mAP_50': det['coco/bbox_mAP_50'], 'coco/bbox_mAP': det['coco/bbox_mAP'],
        'coco/segm_mAP_50': det['coco/segm_mAP_50'], 'coco/segm_mAP': det['coco/segm_mAP'],
        'mIoU': seg['mIoU'] / 100.0, 'lif_firing_rates': firing_rates,
        'seconds': {k: round(v, 1) for k, v in times.items()},
        'total_seconds': round(time.time() - t0, 1),
    }
    with open(osp.join(work, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print('\n== Toy demo results (val split) ==')
    for key in ('coco/bbox_mAP_50', 'coco/bbox_mAP', 'coco/segm_mAP_50', 'coco/segm_mAP', 'mIoU'):
        print(f'{key:18s} {summary[key]:.3f}')
    print(f'wall time: {summary["total_seconds"] / 60:.1f} min '
          f'({", ".join(f"{k} {v:.0f}s" for k, v in times.items())})')
    print(f'outputs in {work}: det_prediction.png, seg_prediction.png, loss_curves.png, '
          'lif_visualization.png, firing_rates.json, summary.json, */test_drawings, logs')


if __name__ == '__main__':
    main()
