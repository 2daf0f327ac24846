"""How many CPU threads a run gets: the number asked for, or the cores other work leaves free."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fcnbase import UsageError
from fcnbase import device as device_module
from fcnbase.device import pick_threads, torch_threads


def test_a_requested_count_wins_and_must_be_positive() -> None:
    assert pick_threads(3) == 3
    with pytest.raises(UsageError, match="threads must be >= 1"):
        pick_threads(0)


@pytest.mark.parametrize(
    ("cores", "busy", "threads"),
    [
        (2, 0.0, 2),  # idle: every core
        (2, 0.4, 2),  # a little background noise
        (2, 0.9, 1),  # one core busy: one thread (two would wait on each other)
        (2, 6.0, 1),  # overloaded: never fewer than one
        (16, 4.0, 12),
    ],
)
def test_the_rule_leaves_the_busy_cores_alone(
    monkeypatch: pytest.MonkeyPatch, cores: int, busy: float, threads: int
) -> None:
    monkeypatch.setattr(device_module, "available_cores", lambda: cores)
    monkeypatch.setattr(device_module, "busy_cores", lambda: busy)
    assert pick_threads() == threads


@pytest.mark.parametrize(("runnable", "busy"), [("1/80", 0.0), ("3/81", 2.0), ("0/9", 0.0)])
def test_busy_cores_reads_the_run_queue_less_the_reader(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, runnable: str, busy: float
) -> None:
    loadavg = tmp_path / "loadavg"
    loadavg.write_text(f"0.00 0.00 0.00 {runnable} 4242\n")  # the load averages are ignored
    monkeypatch.setattr(device_module, "LOADAVG", loadavg)
    monkeypatch.setattr(device_module, "PROBE_INTERVAL", 0.0)
    monkeypatch.setattr(os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    assert device_module.busy_cores() == busy


@pytest.mark.parametrize("content", [None, "", "garbage"])
def test_busy_cores_falls_back_to_the_load_average_without_a_run_queue(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str | None
) -> None:
    loadavg = tmp_path / "loadavg"
    if content is not None:
        loadavg.write_text(content)
    monkeypatch.setattr(device_module, "LOADAVG", loadavg)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.7, 0.2, 0.1))
    assert device_module.busy_cores() == 0.7


@pytest.mark.skipif(not device_module.LOADAVG.exists(), reason="needs Linux's /proc/loadavg")
def test_busy_cores_sees_a_neighbour_that_just_started() -> None:
    """What the 1-minute load average cannot: a job started a moment ago reads as ~0 there."""
    spin = "import sys\nprint('spinning', flush=True)\nwhile True: pass"
    neighbour = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE, text=True)
    try:
        assert neighbour.stdout.readline() == "spinning\n"  # it computes from here on
        assert device_module.busy_cores() >= 0.5
    finally:
        neighbour.kill()
        neighbour.wait()


def test_cpu_name_names_a_processor() -> None:
    name = device_module.cpu_name()
    assert isinstance(name, str) and name.strip() == name and name


def test_torch_threads_sets_the_count_for_the_block_and_restores_it() -> None:
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    with torch_threads(wanted) as used:
        assert used == wanted == torch.get_num_threads()
    assert torch.get_num_threads() == before
