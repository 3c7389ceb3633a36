# ImageNet SNN-MLP-T ablation (paper Table 7):
# LIF groups of 2 positions.
# Build it: name, kwargs = mmsnnmlp.models.snnmlp_timm.classifier_config(THIS_FILE)
#           model = timm.create_model(name, **kwargs)
model = dict(type='snnmlp_tiny', lif_group=2)
paper_top1 = 81.60  # ImageNet-1k val top-1 (%) the paper reports for it
