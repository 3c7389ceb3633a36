# SNN-MLP-B Mask R-CNN, 3x. Not in the paper, which reports detection with T and S only.
# drop_path_rate=0.3 is OUR choice, not a paper setting (T/S use 0.2; the paper's
# B segmentation model uses 0.5). Untuned: no COCO result exists for it.
_base_ = './mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py'
pretrained = 'https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/snnmlp/snnmlp_base_83.59.pt'  # noqa
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.3, init_cfg=dict(checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
