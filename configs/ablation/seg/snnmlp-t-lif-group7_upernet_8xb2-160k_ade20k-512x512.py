# UperNet on ADE20K, SNN-MLP-T ablation of paper Table 7 (81.68 ImageNet top-1):
# LIF groups of 7 positions.
# Only the backbone differs from the base config.
_base_ = '../../seg/snnmlp-t_upernet_8xb2-160k_ade20k-512x512.py'
# Initialised from the released (group-4) ImageNet weights the base config names:
# same keys. The paper trained each group size on ImageNet from scratch.
model = dict(
    backbone=dict(
        lif_group=7))
