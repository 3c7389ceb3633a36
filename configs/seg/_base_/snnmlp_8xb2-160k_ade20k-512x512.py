# Shared by the SNN-MLP ADE20K configs: data, multi-scale + flip test, 160k schedule and
# optimizer of the paper (following AS-MLP and Swin), on top of mmseg's own bases.
_base_ = [
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['mmsnnmlp'], allow_failed_imports=False)
# Claims the work dir before mmengine writes there (config dump, logs): a
# second run on a live run's work dir stops having changed nothing.
runner_type = 'SafeRunner'

# Multi-scale + flip test as in the paper: (2048, 512) x ratios, with flip.
# (mmseg's base scales the raw image and drops reduce_zero_label here.)
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(2048 * r), int(512 * r)), keep_ratio=True)
             for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ]),
]

# AdamW; no weight decay on norms and on the LIF neurons' tau and Vth.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={
        'norm': dict(decay_mult=0.),
        '.tau': dict(decay_mult=0.),
        '.Vth': dict(decay_mult=0.),
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
# Whichever train.py runs this config (ours, mmseg's, `mim train`): checkpoints
# written atomically and never all deleted, one run per work dir, and exact
# resume (RNG states travel in the checkpoints).
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
custom_hooks = [dict(type='RNGStateHook')]
# 8 GPUs x 2 images; --auto-scale-lr scales the LR for another total batch
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
