# Mask R-CNN on COCO, SNN-MLP-T ablation of paper Table 5 (81.56 ImageNet top-1):
# LIF without dwconv: the LIF token mixer without its depthwise conv (and that
# conv's norm).
# Only the backbone differs from the base config.
_base_ = '../../det/mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py'
# No released ImageNet weights fit this variant: train them (the same network as
# configs/ablation/imagenet/snnmlp-t_lif-no-dwconv_in1k.py) and put the file here, or pass
# --cfg-options model.backbone.init_cfg.checkpoint=PATH.
pretrained = 'checkpoints/snnmlp-t_lif-no-dwconv_in1k.pth'
model = dict(
    backbone=dict(
        token_mixer='lif',
        dwconv=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
