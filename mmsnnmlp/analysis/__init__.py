"""What the analysis tools compute, as a library: timing and environment
(``benchmark``), the models compared (``baselines``), result tables
(``tables``), ImageNet evaluation (``imagenet``), LIF firing records
(``lif_recorder``) and FLOP counts (``flops``).

Nothing is imported here: each module pulls in only what it needs (timm,
mmdet, matplotlib, ...) when it is imported itself.
"""
