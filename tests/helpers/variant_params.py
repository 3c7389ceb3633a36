"""SNNMLP parameter counts by formula, from the layer list of each variant.

An independent reference for the model and config tests: it counts the
layers each option adds, not the modules the library builds.
"""

TINY = (96, (2, 2, 6, 2))


def _opt(kwargs, name, default):
    return kwargs.get(name, default)


def expected_params(embed, depths, kwargs, out_norms=True):
    """Parameters of an SNNMLP of this shape built with ``kwargs`` (``out_norms``: with the
    backbone's output norms, else the stages alone, as in the classifier)."""
    mixer = _opt(kwargs, 'token_mixer', 'lif')
    dwconv = _opt(kwargs, 'dwconv', True)
    placement = _opt(kwargs, 'lif_placement', None)
    per_neuron = 2 - _opt(kwargs, 'lif_fix_tau', False) - _opt(kwargs, 'lif_fix_vth', False)
    conv = lambda cin, cout, k=1: cin * cout * k * k + cout  # noqa: E731
    total = conv(3, embed, 4) + 2 * embed  # patch embedding and its norm
    for i, depth in enumerate(depths):
        d = embed * 2**i
        # conv1, norm1, conv2_1/conv2_2/conv3, the last norm
        mixer_params = conv(d, d) + 2 * d + 3 * conv(d, d) + 2 * d
        neurons = 2 if mixer == 'lif' else 0
        if dwconv:
            mixer_params += d * 9 + d + 2 * d  # depthwise 3x3 and its norm
        if placement == 'replace_gelu':  # a LIF pair per GELU: after norm1, after the dw
            neurons += 2 * (1 + dwconv + 2 + 1)  # norm, in the two branches, in the MLP
        block = 2 * 2 * d + mixer_params + conv(d, 4 * d) + conv(4 * d, d) + neurons * per_neuron
        total += depth * block
        if placement == 'after_stage':
            total += 2 * per_neuron
        if i < len(depths) - 1:
            total += 2 * 4 * d + 4 * d * 2 * d  # patch merging: norm, reduction without bias
    if out_norms:
        total += sum(2 * embed * 2**i for i in range(len(depths)))
    return total
