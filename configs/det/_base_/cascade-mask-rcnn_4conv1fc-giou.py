# Turns an SNN-MLP Mask R-CNN config into the paper's Cascade Mask R-CNN (4conv1fc
# box heads with SyncBN and GIoU loss, as in AS-MLP's and Swin's detection code): where
# mmdet's cascade-mask-rcnn_r50_fpn.py differs from its mask-rcnn_r50_fpn.py, with our box
# heads. A variable, not `model`: two bases may not share a key, so a config inherits
# this beside its Mask R-CNN config and applies it with `model = _base_.cascade_rcnn`.


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


def rcnn_stage(iou):
    # mmdet's training setting of a cascade stage that takes IoU `iou` as foreground
    return dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou, min_pos_iou=iou,
                      match_low_quality=False, ignore_iof_thr=-1),
        sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                     add_gt_as_proposals=True),
        mask_size=28,
        pos_weight=-1,
        debug=False)


cascade_rcnn = dict(
    type='CascadeRCNN',
    rpn_head=dict(
        loss_bbox=dict(_delete_=True, type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
    roi_head=dict(
        type='CascadeRoIHead',
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_head=[
            bbox_head([0.1, 0.1, 0.2, 0.2]),
            bbox_head([0.05, 0.05, 0.1, 0.1]),
            bbox_head([0.033, 0.033, 0.067, 0.067]),
        ]),
    train_cfg=dict(
        rpn=dict(allowed_border=0),
        rpn_proposal=dict(max_per_img=2000),
        rcnn=[rcnn_stage(iou) for iou in (0.5, 0.6, 0.7)]))
