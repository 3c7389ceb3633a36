# Mask R-CNN on COCO, SNN-MLP-T ablation of paper Table 5 (81.3 ImageNet top-1):
# AS-MLP's token mixer: its axial shift (shift size 5, dilation 1) in place of
# the LIF, without the depthwise conv. This is AS-MLP-T's block, with AS-MLP's module keys.
# Only the backbone differs from the base config.
_base_ = '../../det/mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py'
# No released ImageNet weights fit this variant: train them (the same network as
# configs/ablation/imagenet/snnmlp-t_as-mlp_in1k.py) and put the file here, or pass
# --cfg-options model.backbone.init_cfg.checkpoint=PATH.
# AS-MLP-T's own ImageNet checkpoint (svip-lab/AS-MLP) has these key names; it is
# expected to load as it is (checked against AS-MLP's module layout, not its file).
pretrained = 'checkpoints/snnmlp-t_as-mlp_in1k.pth'
model = dict(
    backbone=dict(
        token_mixer='axial_shift',
        dwconv=False,
        shift_size=5,
        shift_dilation=1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
