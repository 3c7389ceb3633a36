# ImageNet SNN-MLP-T ablation (paper Table 7):
# global LIF: one group over the whole column / row.
# Build it: name, kwargs = mmsnnmlp.models.snnmlp_timm.classifier_config(THIS_FILE)
#           model = timm.create_model(name, **kwargs)
model = dict(type='snnmlp_tiny', lif_group=None)
paper_top1 = 81.53  # ImageNet-1k val top-1 (%) the paper reports for it
