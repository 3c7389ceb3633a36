# ImageNet SNN-MLP-T ablation (paper Table 8):
# LIF replacing GELU: dwconv + axial shift as the token mixer, and every GELU
# of every block (the token mixer's four, the channel MLP's one) a LIF layer (LIF
# along H and along W, averaged).
# Build it: name, kwargs = mmsnnmlp.models.snnmlp_timm.classifier_config(THIS_FILE)
#           model = timm.create_model(name, **kwargs)
model = dict(type='snnmlp_tiny', token_mixer='axial_shift', lif_placement='replace_gelu')
paper_top1 = 81.21  # ImageNet-1k val top-1 (%) the paper reports for it
