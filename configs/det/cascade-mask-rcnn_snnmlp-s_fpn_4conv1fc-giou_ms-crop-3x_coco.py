# SNN-MLP-S Cascade Mask R-CNN, 3x (paper Table 2: 51.4 box AP / 44.4 mask AP):
# the Mask R-CNN config with cascade heads.
_base_ = ['./mask-rcnn_snnmlp-s_fpn_ms-crop-3x_coco.py',
          './_base_/cascade-mask-rcnn_4conv1fc-giou.py']
model = _base_.cascade_rcnn
