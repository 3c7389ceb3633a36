# ImageNet SNN-MLP-T ablation (paper Table 6):
# tau and Vth fixed at 0.25 / 0.25: plain floats, as with the official
# --lif_fix_tau --lif_fix_vth, so no tau/Vth keys. The paper reports fixed values
# below the learnable ones (81.87) without a figure for 0.25 / 0.25.
# Build it: name, kwargs = mmsnnmlp.models.snnmlp_timm.classifier_config(THIS_FILE)
#           model = timm.create_model(name, **kwargs)
model = dict(type='snnmlp_tiny', lif_tau=0.25, lif_vth=0.25, lif_fix_tau=True, lif_fix_vth=True)
paper_top1 = None  # ImageNet-1k val top-1 (%) the paper reports for it
