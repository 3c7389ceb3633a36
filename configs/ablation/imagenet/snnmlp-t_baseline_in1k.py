# ImageNet SNN-MLP-T ablation (paper Tables 5-8):
# the paper's model (dwconv + LIF, groups of 4, learnable tau/Vth from
# 0.25 / 0.25, LIF replacing the axial shift), the row every ablation table compares
# with (the released checkpoint: 81.88).
# Build it: name, kwargs = mmsnnmlp.models.snnmlp_timm.classifier_config(THIS_FILE)
#           model = timm.create_model(name, **kwargs)
model = dict(type='snnmlp_tiny')
paper_top1 = 81.87  # ImageNet-1k val top-1 (%) the paper reports for it
