"""What a run computes on: the torch device (the GPU when there is one, and a clear error when
asked for a GPU that is not there, rather than torch's error deep inside the first
``.to(device)``) and how many threads its CPU kernels get.

The thread count is decided once, by whoever starts a run (``tinyfcn-train``, a benchmark),
never inside a training loop: see :func:`torch_threads`.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
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


def cpu_name() -> str:
    """The processor's model name, so that a benchmark's figures name the machine they came
    from (Linux's ``/proc/cpuinfo``; elsewhere whatever :mod:`platform` knows)."""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


@contextmanager
def torch_threads(requested: int | None = None) -> Iterator[int]:
    """Run the block on ``requested`` CPU threads (None: torch's count as it is); restore
    torch's count afterwards. Yields the count used, so a run can report it beside its speed.
    """
    import torch

    if requested is not None and requested < 1:
        raise UsageError(f"threads must be >= 1, got {requested}")
    before = torch.get_num_threads()
    threads = before if requested is None else requested
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


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
