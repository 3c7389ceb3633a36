"""Patch ``torch_allowlist`` (torch >= 2.6): torch's ``weights_only``
allowlist learns the types of mmengine training checkpoints, for code that
calls ``torch.load`` itself (our own reads use :func:`safe_load`, which
passes the same list explicitly)."""
import torch

from ..checkpoint.reading import TORCH_ALLOWLIST, _torch_safe_globals


def install() -> None:
    """Add our allowlist to torch's (idempotent; nothing before torch 2.6)."""
    if TORCH_ALLOWLIST:
        torch.serialization.add_safe_globals(_torch_safe_globals())
