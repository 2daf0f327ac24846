"""What a run computes on: the torch device (the GPU when there is one, and a clear error when
asked for a GPU that is not there, rather than torch's error deep inside the first
``.to(device)``) and the CPU cores it may use."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from fcnbase.cli import UsageError

if TYPE_CHECKING:
    import torch


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, not the machine's core count.

    A container or ``taskset`` often grants fewer cores than ``os.cpu_count()`` reports;
    workers beyond the granted ones only add memory and contention.
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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
