"""The torch device a stage runs on, from a user's ``device`` setting (extraction and pretraining)."""
from __future__ import annotations

import torch

from ..errors import ParameterError

__all__ = ["resolve_device"]


def resolve_device(device: str, *, local_rank: int = 0) -> torch.device:
    """Return the torch device named by ``device``.

    Parameters
    ----------
    device : str
        ``"auto"`` (this process's CUDA device when torch sees CUDA, else the CPU), ``"cpu"``,
        ``"cuda"`` or ``"cuda:N"``.
    local_rank : int, keyword-only
        The CUDA device index ``"auto"`` picks (a distributed worker's local rank).

    Returns
    -------
    torch.device

    Raises
    ------
    ParameterError
        ``device`` names no torch device, or names CUDA where torch sees none.
    """
    if device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} was asked for but torch sees no CUDA device; use 'auto' or 'cpu'")
    return resolved
