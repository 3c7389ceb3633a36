"""The training and test settings of the paper's downstream experiments, as data.

Sources, marked per entry:
* paper: the SNN-MLP paper's section 4 and the AS-MLP detection and
  segmentation settings it says it follows;
* ours: where the paper says nothing (the B detection models, the LIF
  neurons' tau/Vth without weight decay, batch per GPU, the hooks), the value
  our configs chose, pinned so that it does not change unnoticed.
"""

_RELEASE = 'https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/snnmlp/'
# paper: the released ImageNet checkpoints each downstream model starts from
PRETRAINED = {
    'tiny': _RELEASE + 'snnmlp_tiny_81.88.pt',
    'small': _RELEASE + 'snnmlp_small_83.30.pt',
    'base': _RELEASE + 'snnmlp_base_83.59.pt',
}
# paper: the released models' LIF group size (their best, 4)
LIF_GROUP = 4
# paper: no weight decay on norms; ours: nor on the LIF neurons' tau and Vth
NO_DECAY_KEYS = ('norm', '.tau', '.Vth')

# Mask R-CNN and Cascade Mask R-CNN on COCO 2017, 3x.
COCO = dict(
    library='mmdet',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),  # paper
    # paper: 36 epochs, LR x0.1 at 27 and 33
    schedule=dict(by_epoch=True, max_epochs=36, milestones=[27, 33], gamma=0.1),
    # paper: linear warm-up of 500 iterations from ratio 0.001
    warmup=dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    batch_per_gpu=2,  # paper: 8 GPUs x 2 images
    total_batch=16,  # paper
    # paper: short side 480..800 step 32, long side <= 1333; the crop branch
    # resizes to 400/500/600, crops 384..600 (absolute range), then the same
    # multi-scale resize; flip 0.5
    train_scales=[(s, 1333) for s in range(480, 801, 32)],
    crop_branch_scales=[(400, 1333), (500, 1333), (600, 1333)],
    crop_size=(384, 600),
    flip_prob=0.5,
    test_scale=(1333, 800),  # paper: single scale, no flip
    num_classes=80,
)

# UperNet on ADE20K, 160k iterations.
ADE = dict(
    library='mmseg',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),  # paper
    # paper: poly LR, power 1.0, down to 0, after the warm-up, for 160k iterations
    schedule=dict(by_epoch=False, max_iters=160000, power=1.0, eta_min=0.0),
    # paper: linear warm-up of 1500 iterations from ratio 1e-6
    warmup=dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    batch_per_gpu=2,  # paper: 8 GPUs x 2 images
    total_batch=16,  # paper
    # paper: random resize of (2048, 512), ratio 0.5..2.0, crop 512 with
    # cat_max_ratio 0.75, flip 0.5, photometric distortion
    train_scale=(2048, 512),
    ratio_range=(0.5, 2.0),
    crop_size=(512, 512),
    cat_max_ratio=0.75,
    flip_prob=0.5,
    test_scale=(2048, 512),  # paper: single scale
    # paper: multi-scale test ratios, with flip
    test_ratios=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75],
    num_classes=150,
)

# Per config: the task's settings, the variant and its drop path rate.
CONFIGS = {
    # paper: drop path 0.2 for T and S detection
    'det/mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py': dict(COCO, arch='tiny', drop_path_rate=0.2),
    'det/mask-rcnn_snnmlp-s_fpn_ms-crop-3x_coco.py': dict(COCO, arch='small', drop_path_rate=0.2),
    # ours: the paper has no B detection model; 0.3 is the config's untuned choice
    'det/mask-rcnn_snnmlp-b_fpn_ms-crop-3x_coco.py': dict(COCO, arch='base', drop_path_rate=0.3),
    'det/cascade-mask-rcnn_snnmlp-t_fpn_4conv1fc-giou_ms-crop-3x_coco.py':
        dict(COCO, arch='tiny', drop_path_rate=0.2),
    'det/cascade-mask-rcnn_snnmlp-s_fpn_4conv1fc-giou_ms-crop-3x_coco.py':
        dict(COCO, arch='small', drop_path_rate=0.2),
    'det/cascade-mask-rcnn_snnmlp-b_fpn_4conv1fc-giou_ms-crop-3x_coco.py':
        dict(COCO, arch='base', drop_path_rate=0.3),  # ours, as for Mask R-CNN B
    # paper: drop path 0.3 (T), 0.3 (S), 0.5 (B) for segmentation
    'seg/snnmlp-t_upernet_8xb2-160k_ade20k-512x512.py': dict(ADE, arch='tiny', drop_path_rate=0.3),
    'seg/snnmlp-s_upernet_8xb2-160k_ade20k-512x512.py':
        dict(ADE, arch='small', drop_path_rate=0.3),
    'seg/snnmlp-b_upernet_8xb2-160k_ade20k-512x512.py': dict(ADE, arch='base', drop_path_rate=0.5),
}
