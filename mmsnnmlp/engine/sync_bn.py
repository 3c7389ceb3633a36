"""SyncBN for CPU processes (gloo): torch's SyncBatchNorm only syncs on GPUs.

Registered as ``CPUSyncBN``; :func:`mmsnnmlp.engine.launch.use_gloo_without_gpus`
swaps it in for ``SyncBN`` in a config.

Statistics are summed over all processes with a differentiable all-reduce,
so N processes with batch b normalise exactly like one process with batch N*b.
"""
import torch
import torch.distributed as dist
from torch.nn.modules.batchnorm import _BatchNorm
from torch.distributed.nn.functional import all_reduce


class CPUSyncBatchNorm(_BatchNorm):
    """BatchNorm over the union of all processes' batches.

    Not an ``nn.SyncBatchNorm`` subclass: DDP refuses those on CPU modules."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f'expected at least 2D input, got {x.dim()}D')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype)
        stats = torch.cat([x.sum(dims), (x * x).sum(dims), count])
        stats = all_reduce(stats)  # sums over processes, gradients flow back
        channels = x.shape[1]
        total = stats[-1]
        mean = stats[:channels] / total
        var = stats[channels:2 * channels] / total - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else \
                    1.0 / float(self.num_batches_tracked)
                unbiased = var * total / (total - 1)
                self.running_mean.mul_(1 - momentum).add_(momentum * mean)
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased)
        shape = [1, channels] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y
