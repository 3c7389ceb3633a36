# Shared by the SNN-MLP COCO configs: data, 3x schedule and optimizer of the
# paper (following AS-MLP), on top of mmdet's own bases.
_base_ = [
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmsnnmlp'], allow_failed_imports=False)
# Claims the work dir before mmengine writes there (config dump, logs): a
# second run on a live run's work dir stops having changed nothing.
runner_type = 'SafeRunner'

# Multi-scale training with the DETR-style crop branch.
multi_scale = [(s, 1333) for s in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=multi_scale, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)],
                     keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                     allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=multi_scale, keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# 3x: 36 epochs, LR x0.1 at 27 and 33, 500-iteration linear warm-up.
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1),
]

# AdamW; no weight decay on norms and on the LIF neurons' tau and Vth.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={
        'norm': dict(decay_mult=0.),
        '.tau': dict(decay_mult=0.),
        '.Vth': dict(decay_mult=0.),
    }))
# Paper setting: 8 GPUs x 2 images; scales the LR if you train with another total batch.
auto_scale_lr = dict(enable=False, base_batch_size=16)
# The reference setups (AS-MLP's and Swin's mmdet code) trained with mixed
# precision: on GPUs, train with --amp (AmpOptimWrapper) as they did.

# Whichever train.py runs this config (ours, mmdet's, `mim train`): checkpoints
# written atomically and never all deleted, one run per work dir, and exact
# resume (RNG states travel in the checkpoints).
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
custom_hooks = [dict(type='RNGStateHook')]
