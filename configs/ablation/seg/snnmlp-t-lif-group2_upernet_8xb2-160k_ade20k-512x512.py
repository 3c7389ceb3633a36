# The paper's UperNet on ADE20K with an SNN-MLP-T ablation backbone; nothing else changes.
_base_ = ['../../seg/snnmlp-t_upernet_8xb2-160k_ade20k-512x512.py',
          '../_base_/backbones/snnmlp-t_lif-group2.py']
model = dict(backbone=_base_.ablation)
