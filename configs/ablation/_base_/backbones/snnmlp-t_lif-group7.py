# SNN-MLP-T ablation of paper Table 7 (81.68 ImageNet top-1): LIF groups of 7 positions.
# Backbone options: the timm classifier and the SNNMLP backbone take the same ones.
ablation = dict(lif_group=7)
# Same keys as the released weights: its COCO/ADE20K configs start from the released
# (group-4) ImageNet checkpoint. The paper trained each group size on ImageNet from scratch.
