# SNN-MLP-T ImageNet classifier with an ablation backbone. Build it: name, kwargs =
# mmsnnmlp.models.snnmlp_timm.classifier_config(THIS_FILE); timm.create_model(name, **kwargs)
_base_ = '../_base_/backbones/snnmlp-t_lif-fixed-tau-vth.py'
model = dict(type='snnmlp_tiny', **_base_.ablation)
paper_top1 = None  # ImageNet-1k val top-1 (%) the paper reports for it
