# ImageNet SNN-MLP-T ablation (paper Table 5):
# LIF without dwconv: the LIF token mixer without its depthwise conv (and that
# conv's norm).
# Build it: name, kwargs = mmsnnmlp.models.snnmlp_timm.classifier_config(THIS_FILE)
#           model = timm.create_model(name, **kwargs)
model = dict(type='snnmlp_tiny', token_mixer='lif', dwconv=False)
paper_top1 = 81.56  # ImageNet-1k val top-1 (%) the paper reports for it
