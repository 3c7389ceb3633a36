# ImageNet SNN-MLP-T ablation (paper Table 5):
# AS-MLP's token mixer: its axial shift (shift size 5, dilation 1) in place of
# the LIF, without the depthwise conv. This is AS-MLP-T's block, with AS-MLP's module keys.
# Build it: name, kwargs = mmsnnmlp.models.snnmlp_timm.classifier_config(THIS_FILE)
#           model = timm.create_model(name, **kwargs)
model = dict(
    type='snnmlp_tiny',
    token_mixer='axial_shift',
    dwconv=False,
    shift_size=5,
    shift_dilation=1)
paper_top1 = 81.3  # ImageNet-1k val top-1 (%) the paper reports for it
