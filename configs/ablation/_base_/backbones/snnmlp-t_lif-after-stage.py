# SNN-MLP-T ablation of paper Table 8 (81.38 ImageNet top-1), LIF after each stage:
# dwconv + axial shift as the token mixer, and a LIF layer (LIF along H and along W,
# averaged) on every stage's output, before its patch merging.
# Backbone options: the timm classifier and the SNNMLP backbone take the same ones.
ablation = dict(token_mixer='axial_shift', lif_placement='after_stage')
# ImageNet weights of this network, for its COCO/ADE20K configs: none are released; train them
# with its ImageNet config, or pass --cfg-options model.backbone.init_cfg.checkpoint=PATH.
ablation_checkpoint = 'checkpoints/snnmlp-t_lif-after-stage_in1k.pth'
