# SNN-MLP-T ablation, not in the paper: no axial op in the token mixer. Its two branches
# mix channels only, and the depthwise conv is the block's only spatial mixing.
# Backbone options: the timm classifier and the SNNMLP backbone take the same ones.
ablation = dict(token_mixer='none')
