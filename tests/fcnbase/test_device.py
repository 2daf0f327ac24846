"""How many CPU threads a run gets, and which processor the figures came from."""

from __future__ import annotations

import pytest
import torch

from fcnbase import UsageError
from fcnbase import device as device_module
from fcnbase.device import torch_threads


def test_a_requested_count_must_be_positive() -> None:
    with pytest.raises(UsageError, match="threads must be >= 1"), torch_threads(0):
        pass


def test_cpu_name_names_a_processor() -> None:
    name = device_module.cpu_name()
    assert isinstance(name, str) and name.strip() == name and name


def test_torch_threads_sets_the_count_for_the_block_and_restores_it() -> None:
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    with torch_threads(wanted) as used:
        assert used == wanted == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_torch_threads_without_a_count_keeps_torch_s() -> None:
    before = torch.get_num_threads()
    with torch_threads(None) as used:
        assert used == before == torch.get_num_threads()
    assert torch.get_num_threads() == before
