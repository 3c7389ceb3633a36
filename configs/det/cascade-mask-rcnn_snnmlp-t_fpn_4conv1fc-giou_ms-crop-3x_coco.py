# SNN-MLP-T Cascade Mask R-CNN with 4conv1fc GIoU heads, 3x
# (paper Table 2: 50.3 box AP / 43.6 mask AP).
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    './_base_/snnmlp_coco-instance_ms-crop-3x.py',
]
pretrained = 'https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/snnmlp/snnmlp_tiny_81.88.pt'  # noqa


def bbox_head(stds):
    return dict(
        type='ConvFCBBoxHead',
        num_shared_convs=4,
        num_shared_fcs=1,
        in_channels=256,
        conv_out_channels=256,
        fc_out_channels=1024,
        roi_feat_size=7,
        num_classes=80,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                        target_stds=stds),
        reg_class_agnostic=False,
        reg_decoded_bbox=True,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=10.0))


model = dict(
    backbone=dict(
        _delete_=True,
        type='SNNMLP',
        arch='tiny',
        drop_path_rate=0.2,
        lif_group=4,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]),
    roi_head=dict(bbox_head=[
        bbox_head([0.1, 0.1, 0.2, 0.2]),
        bbox_head([0.05, 0.05, 0.1, 0.1]),
        bbox_head([0.033, 0.033, 0.067, 0.067]),
    ]))
