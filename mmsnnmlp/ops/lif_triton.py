"""Fused LIF kernels in Triton (CUDA). Placeholder until the kernel lands."""


def usable(x) -> bool:
    return False


def lif(x, tau, vth, group, dim):
    raise NotImplementedError
