# SNN-MLP-T ablation of paper Table 5 (81.56 ImageNet top-1), LIF without dwconv: the
# LIF token mixer without its depthwise conv (and that conv's norm).
# Backbone options: the timm classifier and the SNNMLP backbone take the same ones.
ablation = dict(token_mixer='lif', dwconv=False)
# ImageNet weights of this network, for its COCO/ADE20K configs: none are released; train them
# with its ImageNet config, or pass --cfg-options model.backbone.init_cfg.checkpoint=PATH.
ablation_checkpoint = 'checkpoints/snnmlp-t_lif-no-dwconv_in1k.pth'
