# SNN-MLP-B UperNet on ADE20K (paper Table 3: 48.4 ss / 49.4 ms+flip mIoU).
_base_ = './snnmlp-t_upernet_8xb2-160k_ade20k-512x512.py'
pretrained = 'https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/snnmlp/snnmlp_base_83.59.pt'  # noqa
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.5, init_cfg=dict(checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
