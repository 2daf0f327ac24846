"""How many CPU threads a run gets: the number asked for, or the cores the load leaves free."""

from __future__ import annotations

import os

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
    ("cores", "load", "threads"),
    [
        (2, 0.0, 2),  # idle: every core
        (2, 0.4, 2),  # a little background noise
        (2, 0.9, 1),  # one core busy: one thread (two would wait on each other)
        (2, 6.0, 1),  # overloaded: never fewer than one
        (16, 4.0, 12),
    ],
)
def test_the_rule_leaves_the_busy_cores_alone(
    monkeypatch: pytest.MonkeyPatch, cores: int, load: float, threads: int
) -> None:
    monkeypatch.setattr(device_module, "available_cores", lambda: cores)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert pick_threads() == threads


def test_torch_threads_sets_the_count_for_the_block_and_restores_it() -> None:
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    with torch_threads(wanted) as used:
        assert used == wanted == torch.get_num_threads()
    assert torch.get_num_threads() == before
