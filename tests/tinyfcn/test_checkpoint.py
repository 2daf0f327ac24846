"""Checkpoints: an exact round trip, nothing left half-written, foreign files refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fcnbase.outputs import is_partial
from tests.tinyfcn.toys import toy_config, toy_splits
from tinyfcn import TinyFCN, load_checkpoint, run, save_checkpoint


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    data = toy_splits()
    path = tmp_path / "ckpt" / "fcn2s.pt"
    result = run(toy_config(), data=data, checkpoint=path, progress=False)
    model, saved = load_checkpoint(path)
    assert saved["config"]["variant"] == "fcn2s"
    x = data[1][0]
    with torch.no_grad():
        assert torch.equal(model.eval()(x), result.model.eval()(x))
    names = [p.name for p in path.parent.iterdir()]
    assert not [n for n in names if is_partial(n)], "temporary file left behind"
    assert names == ["fcn2s.pt"]


def test_checkpoint_of_another_variant_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fcn2s.pt"
    save_checkpoint(path, TinyFCN("fcn2s"), toy_config())
    with pytest.raises(ValueError, match="variant='fcn2s' model, but variant='fcn1s'"):
        load_checkpoint(path, expect=toy_config(variant="fcn1s"))


def test_missing_and_foreign_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not a tinyfcn checkpoint"):
        load_checkpoint(foreign)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable tinyfcn checkpoint"):
        load_checkpoint(garbage)
