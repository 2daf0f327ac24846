"""What a run computes on: the torch device (the GPU when there is one, and a clear error when
asked for a GPU that is not there, rather than torch's error deep inside the first
``.to(device)``), the CPU cores it may use and how many threads its CPU kernels get."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
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


def pick_threads(requested: int | None = None) -> int:
    """How many threads torch's CPU kernels should use: ``requested``, or a rule of the load.

    The rule: the cores this process may use (:func:`available_cores`) less the ones the
    1-minute load average says other work keeps busy, rounded, and at least one. Threads
    beyond the free cores do not share them gently: torch's OpenMP threads spin-wait for
    each other at every kernel, so one preempted thread stalls all. On a 2-core machine
    beside one busy process, 200 fcn1s steps (batch 32) took 28 s with one thread and
    181-207 s with two; on an idle machine two threads are faster (docs/tinyfcn.md has the
    measurements). The load average lags by about a minute and counts the caller itself
    if it was computing just before; ``requested`` (``--threads``) overrides the rule.
    """
    if requested is not None:
        if requested < 1:
            raise UsageError(f"threads must be >= 1, got {requested}")
        return requested
    cores = available_cores()
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, math.floor(cores - busy + 0.5)))


@contextmanager
def torch_threads(requested: int | None = None) -> Iterator[int]:
    """Run the block with :func:`pick_threads`'s thread count; restore torch's afterwards.

    Yields the count used, so a run can report it beside its speed.
    """
    import torch

    before = torch.get_num_threads()
    threads = pick_threads(requested)
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
