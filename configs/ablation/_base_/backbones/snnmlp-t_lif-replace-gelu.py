# SNN-MLP-T ablation of paper Table 8 (81.21 ImageNet top-1), LIF replacing GELU:
# dwconv + axial shift as the token mixer, and every GELU of every block (the token
# mixer's four, the channel MLP's one) a LIF layer (LIF along H and along W, averaged).
# Backbone options: the timm classifier and the SNNMLP backbone take the same ones.
ablation = dict(token_mixer='axial_shift', lif_placement='replace_gelu')
# ImageNet weights of this network, for its COCO/ADE20K configs: none are released; train them
# with its ImageNet config, or pass --cfg-options model.backbone.init_cfg.checkpoint=PATH.
ablation_checkpoint = 'checkpoints/snnmlp-t_lif-replace-gelu_in1k.pth'
