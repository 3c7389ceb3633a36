# SNN-MLP-T ablation, not in the paper: no LIF, the official code's lif=-1. Every LIF
# neuron is the identity but keeps its learnable tau/Vth, so checkpoints trained that
# way load.
# Backbone options: the timm classifier and the SNNMLP backbone take the same ones.
ablation = dict(lif_group=-1)
