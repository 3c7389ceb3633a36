# Mask R-CNN on COCO, SNN-MLP-T ablation of paper Table 5 (81.66 ImageNet top-1):
# Dwconv + axial shift: SNN-MLP's token mixer with AS-MLP's axial shift
# (shift size 5, dilation 1) in place of the LIF.
# Only the backbone differs from the base config.
_base_ = '../../det/mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py'
# No released ImageNet weights fit this variant: train them (the same network as
# configs/ablation/imagenet/snnmlp-t_dwconv-axial-shift_in1k.py) and put the file here, or pass
# --cfg-options model.backbone.init_cfg.checkpoint=PATH.
pretrained = 'checkpoints/snnmlp-t_dwconv-axial-shift_in1k.pth'
model = dict(
    backbone=dict(
        token_mixer='axial_shift',
        dwconv=True,
        shift_size=5,
        shift_dilation=1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
