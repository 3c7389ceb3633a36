# Toy UperNet: the paper config on tools/misc/make_toy_data.py's ADE20K-layout
# shapes, with a narrow SNN-MLP trained from scratch in a few CPU minutes.
# Changed: data paths and classes, crop size, schedule, widths, no pretraining.
_base_ = '../seg/snnmlp-t_upernet_8xb2-160k_ade20k-512x512.py'

data_root = 'data/toy/ade/ADEChallengeData2016'
# The first four ADE20K classes stand for background, circle, square, triangle.
metainfo = dict(classes=('wall', 'building', 'sky', 'floor'),
                palette=[[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50]])
crop_size = (128, 128)
widths = [32, 64, 128, 256]
norm_cfg = dict(type='BN', requires_grad=True)  # one process: no SyncBN needed
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch=dict(_delete_=True, embed_dims=widths[0], depths=(1, 1, 2, 1)),
                  drop_path_rate=0.1,
                  init_cfg=None),
    decode_head=dict(in_channels=widths, channels=64, num_classes=4, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=widths[2], channels=32, num_classes=4, norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=30, end=max_iters, by_epoch=False),
]
optim_wrapper = dict(optimizer=dict(lr=2e-3))
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1),
                     visualization=dict(interval=1))  # draw every test image with --show-dir
