# SNN-MLP-T UperNet on ADE20K, 160k iterations
# (paper Table 3: 45.6 mIoU single scale, 46.5 multi-scale + flip).
# Single-scale test: tools/test.py CONFIG CKPT; multi-scale + flip: add --tta.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    './_base_/snnmlp_8xb2-160k_ade20k-512x512.py',
]
pretrained = 'https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/snnmlp/snnmlp_tiny_81.88.pt'  # noqa
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='SNNMLP',
        arch='tiny',
        drop_path_rate=0.3,
        lif_group=4,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[96, 192, 384, 768], num_classes=150),
    auxiliary_head=dict(in_channels=384, num_classes=150))
