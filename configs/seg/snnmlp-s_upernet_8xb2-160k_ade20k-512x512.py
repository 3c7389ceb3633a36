# SNN-MLP-S UperNet on ADE20K (paper Table 3: 48.1 ss / 49.0 ms+flip mIoU).
_base_ = './snnmlp-t_upernet_8xb2-160k_ade20k-512x512.py'
pretrained = 'https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/snnmlp/snnmlp_small_83.30.pt'  # noqa
model = dict(backbone=dict(arch='small', init_cfg=dict(checkpoint=pretrained)))
