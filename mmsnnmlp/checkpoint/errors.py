"""The checkpoint package's one error class (its own module, so that reading
and integrity checks can both raise it)."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used, with the reason in the message."""
