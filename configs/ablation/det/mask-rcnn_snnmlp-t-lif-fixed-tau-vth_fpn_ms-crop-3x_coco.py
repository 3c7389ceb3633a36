# The paper's Mask R-CNN on COCO with an SNN-MLP-T ablation backbone; nothing else changes.
_base_ = ['../../det/mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py',
          '../_base_/backbones/snnmlp-t_lif-fixed-tau-vth.py']
pretrained = _base_.ablation_checkpoint
model = dict(backbone=dict(**_base_.ablation, init_cfg=dict(checkpoint=pretrained)))
