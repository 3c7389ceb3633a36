# SNN-MLP-T ablation of paper Table 5 (81.3 ImageNet top-1), AS-MLP's token mixer: its
# axial shift (shift size 5, dilation 1) in place of the LIF, without the depthwise conv.
# This is AS-MLP-T's block, with AS-MLP's module keys.
# Backbone options: the timm classifier and the SNNMLP backbone take the same ones.
ablation = dict(token_mixer='axial_shift', dwconv=False, shift_size=5, shift_dilation=1)
# ImageNet weights of this network, for its COCO/ADE20K configs: none are released; train them
# with its ImageNet config, or pass --cfg-options model.backbone.init_cfg.checkpoint=PATH.
# AS-MLP-T's own ImageNet checkpoint (svip-lab/AS-MLP) has these key names; it is
# expected to load as it is (checked against AS-MLP's module layout, not its file).
ablation_checkpoint = 'checkpoints/snnmlp-t_as-mlp_in1k.pth'
