# ImageNet SNN-MLP-T ablation (paper Table 5):
# dwconv + axial shift: SNN-MLP's token mixer with AS-MLP's axial shift
# (shift size 5, dilation 1) in place of the LIF.
# Build it: name, kwargs = mmsnnmlp.models.snnmlp_timm.classifier_config(THIS_FILE)
#           model = timm.create_model(name, **kwargs)
model = dict(
    type='snnmlp_tiny',
    token_mixer='axial_shift',
    dwconv=True,
    shift_size=5,
    shift_dilation=1)
paper_top1 = 81.66  # ImageNet-1k val top-1 (%) the paper reports for it
