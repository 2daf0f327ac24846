"""What a run computes on: the torch device (the GPU when there is one, and a clear error when
asked for a GPU that is not there, rather than torch's error deep inside the first
``.to(device)``), the CPU cores it may use and how many threads its CPU kernels get."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


#: Linux's run-queue snapshot: its fourth field, ``runnable/total``, counts the tasks that are
#: running or waiting for a core at this instant (the reader among them).
LOADAVG = Path("/proc/loadavg")
#: How :func:`busy_cores` looks: 20 snapshots over 0.1 s, enough to see a job that computes
#: without pause and too short to matter to a run.
PROBE_SAMPLES, PROBE_INTERVAL = 20, 0.005


def busy_cores() -> float:
    """How many cores other work keeps busy *now*: runnable tasks besides this one.

    Averaged over :data:`PROBE_SAMPLES` snapshots of the run queue (:data:`LOADAVG`), less
    the one task that reads it. Why not the load average: the 1-minute average lags. A job
    started 30 s ago reads as 0.4 of a core, so a rule built on it gave a fresh neighbour's
    core to torch (4.6x slower steps, docs/tinyfcn.md); and the caller's own work of the last
    minute (making the data, say) reads as a neighbour that is no longer there. Where there
    is no run queue to read (macOS, Windows), the load average is all there is, if that.
    """
    try:
        total = 0
        for i in range(PROBE_SAMPLES):
            if i:
                time.sleep(PROBE_INTERVAL)
            total += int(LOADAVG.read_text().split()[3].split("/")[0])
        return max(0.0, total / PROBE_SAMPLES - 1)
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def pick_threads(requested: int | None = None) -> int:
    """How many threads torch's CPU kernels should use: ``requested``, or a rule of the load.

    The rule: the cores this process may use (:func:`available_cores`) less the ones other
    work keeps busy right now (:func:`busy_cores`), rounded, and at least one. Threads
    beyond the free cores do not share them gently: torch's OpenMP threads spin-wait for
    each other at every kernel, so one preempted thread stalls all. On a 2-core machine
    beside one busy process, fcn1s steps at batch 4 ran 4.6x slower with two threads than
    with one; on an idle machine two threads are faster (docs/tinyfcn.md has the
    measurements). Each call takes one look; tinyfcn's training loop calls again at every
    evaluation point, so a neighbour that comes or goes mid-run is seen there;
    ``requested`` (``--threads``) overrides the rule.
    """
    if requested is not None:
        if requested < 1:
            raise UsageError(f"threads must be >= 1, got {requested}")
        return requested
    cores = available_cores()
    return max(1, min(cores, math.floor(cores - busy_cores() + 0.5)))


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
