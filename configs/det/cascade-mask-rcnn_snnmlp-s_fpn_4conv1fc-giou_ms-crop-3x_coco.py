# SNN-MLP-S Cascade Mask R-CNN, 3x (paper Table 2: 51.4 box AP / 44.4 mask AP).
_base_ = './cascade-mask-rcnn_snnmlp-t_fpn_4conv1fc-giou_ms-crop-3x_coco.py'
pretrained = 'https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/snnmlp/snnmlp_small_83.30.pt'  # noqa
model = dict(backbone=dict(arch='small', init_cfg=dict(checkpoint=pretrained)))
