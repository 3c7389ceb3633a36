# UperNet on ADE20K, SNN-MLP-T ablation of paper Table 8 (81.38 ImageNet top-1):
# LIF after each stage: dwconv + axial shift as the token mixer, and a LIF
# layer (LIF along H and along W, averaged) on every stage's output, before its
# patch merging.
# Only the backbone differs from the base config.
_base_ = '../../seg/snnmlp-t_upernet_8xb2-160k_ade20k-512x512.py'
# No released ImageNet weights fit this variant: train them (the same network as
# configs/ablation/imagenet/snnmlp-t_lif-after-stage_in1k.py) and put the file here, or pass
# --cfg-options model.backbone.init_cfg.checkpoint=PATH.
pretrained = 'checkpoints/snnmlp-t_lif-after-stage_in1k.pth'
model = dict(
    backbone=dict(
        token_mixer='axial_shift',
        lif_placement='after_stage',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
