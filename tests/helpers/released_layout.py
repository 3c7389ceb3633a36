"""Independent classification-layout SNN-MLP for checkpoint tests.

Builds a state dict with the key names of the released ImageNet checkpoints,
and runs that network (stages, and the classification head)
functionally with torch.nn.functional and its own small LIF loop: no code
shared with mmsnnmlp.models.
"""
import sys
import types

import torch
import torch.nn.functional as F

ARCHS = {'tiny': (96, (2, 2, 6, 2)), 'small': (96, (2, 2, 18, 2)), 'base': (128, (2, 2, 18, 2))}


def released_state_dict(embed_dims, depths, seed=0, num_classes=1000):
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.05):
        return torch.randn(*shape, generator=gen) * scale

    def norm_params(prefix, c):
        sd[prefix + '.weight'] = 1 + rnd(c, scale=0.1)
        sd[prefix + '.bias'] = rnd(c, scale=0.1)

    def conv(prefix, cout, cin, k=1, bias=True, groups=1):
        sd[prefix + '.weight'] = rnd(cout, cin // groups, k, k, scale=(1.0 / (cin // groups * k * k)) ** 0.5)
        if bias:
            sd[prefix + '.bias'] = rnd(cout, scale=0.02)

    sd = {}
    conv('patch_embed.proj', embed_dims, 3, k=4)
    norm_params('patch_embed.norm', embed_dims)
    for i, depth in enumerate(depths):
        dim = embed_dims * 2**i
        for j in range(depth):
            b = f'layers.{i}.blocks.{j}'
            norm_params(f'{b}.norm1', dim)
            norm_params(f'{b}.norm2', dim)
            m = f'{b}.lif_module'
            conv(f'{m}.conv1', dim, dim)
            conv(f'{m}.conv2_1', dim, dim)
            conv(f'{m}.conv2_2', dim, dim)
            conv(f'{m}.conv3', dim, dim)
            conv(f'{m}.dw1', dim, dim, k=3, groups=dim)
            for n in ('norm1', 'norm2', 'norm3'):
                norm_params(f'{m}.{n}', dim)
            for lif_name in ('lif1', 'lif2'):
                # non-default values, different per neuron
                sd[f'{m}.{lif_name}.tau'] = 0.35 + 0.3 * torch.rand(1, generator=gen)
                sd[f'{m}.{lif_name}.Vth'] = -0.3 + 0.4 * torch.rand(1, generator=gen)
            conv(f'{b}.mlp.fc1', 4 * dim, dim)
            conv(f'{b}.mlp.fc2', dim, 4 * dim)
        if i < len(depths) - 1:
            norm_params(f'layers.{i}.downsample.norm', 4 * dim)
            conv(f'layers.{i}.downsample.reduction', 2 * dim, 4 * dim, bias=False)
    last = embed_dims * 2**(len(depths) - 1)
    norm_params('norm', last)
    sd['head.weight'] = rnd(num_classes, last)
    sd['head.bias'] = rnd(num_classes)
    return sd


def _lif(x, tau, vth, group, dim):
    x = x.movedim(dim, -1)
    out = x.clone()
    n = x.shape[-1] // group
    for k in range(n):
        o = torch.zeros_like(x[..., 0])
        for j in range(k * group, (k + 1) * group):
            u = tau * o + x[..., j]
            fired = u > vth
            out[..., j] = torch.where(fired, u, vth.expand_as(u))
            o = torch.where(fired, torch.zeros_like(u), u)
    return out.movedim(-1, dim)


def _zero_pad_bottom_right(x, multiple):
    """``x`` inside a zero canvas whose H and W are rounded up to ``multiple``."""
    h, w = x.shape[-2:]
    up = lambda n: -(-n // multiple) * multiple
    canvas = x.new_zeros(*x.shape[:-2], up(h), up(w))
    canvas[..., :h, :w] = x
    return canvas


def stage_features(sd, depths, x, group=4):
    """Each stage's features before patch merging. Any input size: the patch
    embedding and each merging see zeros added at the bottom/right (as mmdet's
    Swin does)."""
    gn = lambda t, p: F.group_norm(t, 1, sd[p + '.weight'], sd[p + '.bias'], 1e-5)
    cv = lambda t, p, **kw: F.conv2d(t, sd[p + '.weight'], sd.get(p + '.bias'), **kw)
    x = gn(cv(_zero_pad_bottom_right(x, 4), 'patch_embed.proj', stride=4), 'patch_embed.norm')
    feats = []
    for i, depth in enumerate(depths):
        dim = x.shape[1]
        for j in range(depth):
            b = f'layers.{i}.blocks.{j}'
            m = f'{b}.lif_module'
            t = F.gelu(gn(cv(gn(x, f'{b}.norm1'), f'{m}.conv1'), f'{m}.norm1'))
            t = F.gelu(gn(cv(t, f'{m}.dw1', padding=1, groups=dim), f'{m}.norm2'))
            h = F.gelu(cv(_lif(t, sd[f'{m}.lif1.tau'], sd[f'{m}.lif1.Vth'], group, 2), f'{m}.conv2_1'))
            w = F.gelu(cv(_lif(t, sd[f'{m}.lif2.tau'], sd[f'{m}.lif2.Vth'], group, 3), f'{m}.conv2_2'))
            x = x + cv(gn(h + w, f'{m}.norm3'), f'{m}.conv3')
            t = cv(F.gelu(cv(gn(x, f'{b}.norm2'), f'{b}.mlp.fc1')), f'{b}.mlp.fc2')
            x = x + t
        feats.append(x)
        if i < len(depths) - 1:
            x = _zero_pad_bottom_right(x, 2)
            x = torch.cat([x[..., 0::2, 0::2], x[..., 1::2, 0::2], x[..., 0::2, 1::2],
                           x[..., 1::2, 1::2]], 1)
            x = cv(gn(x, f'layers.{i}.downsample.norm'), f'layers.{i}.downsample.reduction')
    return feats


def classifier_logits(sd, depths, x, group=4):
    """The released classifier: last stage -> GroupNorm ``norm`` -> global mean -> ``head``."""
    last = stage_features(sd, depths, x, group)[-1]
    pooled = F.group_norm(last, 1, sd['norm.weight'], sd['norm.bias'], 1e-5).mean((2, 3))
    return F.linear(pooled, sd['head.weight'], sd['head.bias'])


class FakeYacs:
    """Context manager providing a stand-in ``yacs.config.CfgNode`` for pickling.

    Mirrors the real class's shape (a dict subclass with flags in __dict__) so
    the pickle stream names ``yacs.config.CfgNode``; removed again on exit."""

    def __enter__(self):
        yacs = types.ModuleType('yacs')
        config = types.ModuleType('yacs.config')

        class CfgNode(dict):
            IMMUTABLE = '__immutable__'

            def __init__(self, init_dict=None):
                super().__init__(init_dict or {})
                self.__dict__[CfgNode.IMMUTABLE] = True
                self.__dict__['__new_allowed__'] = False

        CfgNode.__module__, CfgNode.__qualname__ = 'yacs.config', 'CfgNode'
        config.CfgNode = CfgNode
        yacs.config = config
        self._saved = {k: sys.modules.get(k) for k in ('yacs', 'yacs.config')}
        sys.modules['yacs'], sys.modules['yacs.config'] = yacs, config
        return CfgNode

    def __exit__(self, *exc):
        for k, v in self._saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def training_checkpoint(state_dict):
    """The released training-script layout around ``state_dict`` (pickled yacs config)."""
    with FakeYacs() as CfgNode:
        cfg = CfgNode({'MODEL': CfgNode({'TYPE': 'snnmlp', 'NAME': 'snnmlp_tiny'}),
                       'TRAIN': CfgNode({'EPOCHS': 300, 'BASE_LR': 1e-3})})
        payload = {
            'model': state_dict,
            'optimizer': {'state': {0: {'step': torch.tensor(3.0), 'exp_avg': torch.zeros(2)}},
                          'param_groups': [{'lr': 1e-3, 'betas': (0.9, 0.999), 'params': [0]}]},
            'optimizer_lif': {'state': {}, 'param_groups': [{'lr': 1e-4, 'params': []}]},
            'lr_scheduler': {'last_epoch': 3}, 'lr_scheduler_lif': {'last_epoch': 3},
            'max_accuracy': 81.88, 'epoch': 299, 'config': cfg,
            'amp': {'scale': 65536.0, 'growth_factor': 2.0, '_growth_tracker': 7},
        }
        import io
        buf = io.BytesIO()
        torch.save(payload, buf)
    return buf.getvalue()
