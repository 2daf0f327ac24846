"""TrainConfig refuses a bad value when it is made, as the CLI's usage errors."""

from __future__ import annotations

import pytest

from fcnbase import UsageError
from tests.tinyfcn.toys import toy_config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"variant": "fcn8s"}, "unknown variant"),
        ({"epochs": None, "seconds": None}, "give a budget"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"lr": -1.0}, "lr must be a finite number > 0"),
        ({"lr": 0.0}, "lr must be a finite number > 0"),
        ({"seconds": float("nan")}, "seconds must be a finite number >= 0"),
    ],
)
def test_bad_configs(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        toy_config(**overrides)
    with pytest.raises(UsageError):
        toy_config(**overrides)
