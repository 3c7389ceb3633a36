# SNN-MLP-S Mask R-CNN, 3x (paper Table 2: 48.0 box AP / 42.8 mask AP).
_base_ = './mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py'
pretrained = 'https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/snnmlp/snnmlp_small_83.30.pt'  # noqa
model = dict(backbone=dict(arch='small', init_cfg=dict(checkpoint=pretrained)))
