# ImageNet SNN-MLP-T ablation (not in the paper):
# no axial op in the token mixer: its two branches mix channels only, and
# the depthwise conv is the block's only spatial mixing. Not in the paper.
# Build it: name, kwargs = mmsnnmlp.models.snnmlp_timm.classifier_config(THIS_FILE)
#           model = timm.create_model(name, **kwargs)
model = dict(type='snnmlp_tiny', token_mixer='none')
paper_top1 = None  # ImageNet-1k val top-1 (%) the paper reports for it
