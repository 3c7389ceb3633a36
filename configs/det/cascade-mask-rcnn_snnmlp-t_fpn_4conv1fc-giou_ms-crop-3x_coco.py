# SNN-MLP-T Cascade Mask R-CNN with 4conv1fc GIoU heads, 3x
# (paper Table 2: 50.3 box AP / 43.6 mask AP): the Mask R-CNN config with cascade heads.
_base_ = ['./mask-rcnn_snnmlp-t_fpn_ms-crop-3x_coco.py',
          './_base_/cascade-mask-rcnn_4conv1fc-giou.py']
model = _base_.cascade_rcnn
