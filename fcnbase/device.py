"""Which device a run uses: the GPU when there is one, and a clear error when asked for a
GPU that is not there (rather than torch's error deep inside the first ``.to(device)``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fcnbase.cli import UsageError

if TYPE_CHECKING:
    import torch


def pick_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or None) is the GPU when there is one; ``cuda`` without a GPU is a usage error."""
    import torch

    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name}: not a torch device (try cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name} was asked for, but torch sees no CUDA GPU")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")
    return device
