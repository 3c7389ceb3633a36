# The paper's Mask R-CNN on COCO with an SNN-MLP-T ablation backbone; nothing else changes.
_base_ = ['../../det/mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py',
          '../_base_/backbones/snnmlp-t_lif-group7.py']
model = dict(backbone=_base_.ablation)
