# SNN-MLP-B Cascade Mask R-CNN, 3x: the Mask R-CNN config with cascade heads. Not in the
# paper, which reports detection with T and S only; the backbone settings are explained
# in the Mask R-CNN config. Untuned: no COCO result exists for it.
_base_ = ['./mask-rcnn_snnmlp-b_fpn_ms-crop-3x_coco.py',
          './_base_/cascade-mask-rcnn_4conv1fc-giou.py']
model = _base_.cascade_rcnn
