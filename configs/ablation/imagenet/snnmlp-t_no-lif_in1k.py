# ImageNet SNN-MLP-T ablation (not in the paper):
# no LIF, the official code's lif=-1: every LIF neuron is the identity but
# keeps its learnable tau/Vth, so checkpoints trained that way load. Not in the paper.
# Build it: name, kwargs = mmsnnmlp.models.snnmlp_timm.classifier_config(THIS_FILE)
#           model = timm.create_model(name, **kwargs)
model = dict(type='snnmlp_tiny', lif_group=-1)
paper_top1 = None  # ImageNet-1k val top-1 (%) the paper reports for it
