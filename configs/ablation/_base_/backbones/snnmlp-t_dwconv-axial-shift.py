# SNN-MLP-T ablation of paper Table 5 (81.66 ImageNet top-1), dwconv + axial shift:
# SNN-MLP's token mixer with AS-MLP's axial shift (shift size 5, dilation 1) in place of
# the LIF.
# Backbone options: the timm classifier and the SNNMLP backbone take the same ones.
ablation = dict(token_mixer='axial_shift', dwconv=True, shift_size=5, shift_dilation=1)
# ImageNet weights of this network, for its COCO/ADE20K configs: none are released; train them
# with its ImageNet config, or pass --cfg-options model.backbone.init_cfg.checkpoint=PATH.
ablation_checkpoint = 'checkpoints/snnmlp-t_dwconv-axial-shift_in1k.pth'
