# ImageNet SNN-MLP-T ablation (paper Table 8):
# LIF after each stage: dwconv + axial shift as the token mixer, and a LIF
# layer (LIF along H and along W, averaged) on every stage's output, before its
# patch merging.
# Build it: name, kwargs = mmsnnmlp.models.snnmlp_timm.classifier_config(THIS_FILE)
#           model = timm.create_model(name, **kwargs)
model = dict(type='snnmlp_tiny', token_mixer='axial_shift', lif_placement='after_stage')
paper_top1 = 81.38  # ImageNet-1k val top-1 (%) the paper reports for it
