# SNN-MLP-T Mask R-CNN, 3x multi-scale with crop (paper Table 2: 46.0 box AP / 41.6 mask AP).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './_base_/snnmlp_coco-instance_ms-crop-3x.py',
]
pretrained = 'https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/snnmlp/snnmlp_tiny_81.88.pt'  # noqa
model = dict(
    backbone=dict(
        _delete_=True,
        type='SNNMLP',
        arch='tiny',
        drop_path_rate=0.2,
        lif_group=4,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))
