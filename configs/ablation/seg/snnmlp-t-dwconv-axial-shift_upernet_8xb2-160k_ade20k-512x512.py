# The paper's UperNet on ADE20K with an SNN-MLP-T ablation backbone; nothing else changes.
_base_ = ['../../seg/snnmlp-t_upernet_8xb2-160k_ade20k-512x512.py',
          '../_base_/backbones/snnmlp-t_dwconv-axial-shift.py']
pretrained = _base_.ablation_checkpoint
model = dict(backbone=dict(**_base_.ablation, init_cfg=dict(checkpoint=pretrained)))
