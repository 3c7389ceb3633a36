# Mask R-CNN on COCO with the official LIF training option (`--lif_lr`): the LIF
# neurons' tau and Vth learn at 0.1x the base learning rate, without weight decay, as
# the authors' ImageNet training did (their own AdamW group). Opt in by inheriting this
# file, or add the same `optim_wrapper` lines to any config. mmengine matches the keys
# as substrings of parameter names, so they catch every tau/Vth and nothing else; the
# LR schedule scales this group's LR like the others (the official --lif_startepoch,
# a later start for tau/Vth, has no counterpart here).
_base_ = '../../det/mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py'
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={
        '.tau': dict(lr_mult=0.1, decay_mult=0.),
        '.Vth': dict(lr_mult=0.1, decay_mult=0.),
    }))
