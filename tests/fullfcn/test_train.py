"""Training: recipes, loss going down, exact resume after an interrupt, DDP on 2 CPUs."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

from fullfcn import train as train_module
from fullfcn.builders import build
from fullfcn.evaluate import confusion_matrix, eval_loader
from fullfcn.train import TrainConfig, _optimizer, train
from fullfcn.transforms import eval_transforms
from fullfcn.voc import VOCSegmentation
from tests.fullfcn.conftest import WIDTH


def _config(voc: Path, out: Path, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(
        voc_root=str(voc),
        out_dir=str(out),
        variant="fcn16s",
        recipe="modern",
        weights=None,
        width_divisor=WIDTH,
        batch_size=2,
        crop_size=64,
        iterations=4,
        workers=0,
        progress=False,
        tensorboard=False,
    )
    return TrainConfig(**{**base, **kw})


def test_paper_recipe_defaults_and_parameter_groups() -> None:
    c = TrainConfig(variant="fcn16s").resolved()
    assert (c.lr, c.momentum, c.batch_size, c.crop_size) == (1e-12, 0.99, 1, None)
    assert TrainConfig(variant="fcn8s").resolved().lr == 1e-14
    assert TrainConfig(variant="fcn32s").resolved().lr == 1e-10
    model = build("fcn16s", width_divisor=WIDTH)
    weights, biases = _optimizer(model, c).param_groups
    assert (weights["lr"], weights["weight_decay"]) == (1e-12, 5e-4)
    assert (biases["lr"], biases["weight_decay"]) == (2e-12, 0.0)
    grouped = {id(p) for g in (weights, biases) for p in g["params"]}
    assert id(model.upscore2.weight) not in grouped  # frozen bilinear upsampling
    assert all(p.ndim == 1 for p in biases["params"])
    with pytest.raises(ValueError, match="crop-size"):
        TrainConfig(batch_size=4).resolved()


def test_a_few_steps_lower_the_loss(tiny_voc: Path, tmp_path: Path) -> None:
    result = train(_config(tiny_voc, tmp_path, iterations=10, val_split="val", val_every=10))
    assert len(result.losses) == 10
    assert sum(result.losses[-3:]) / 3 < result.losses[0]
    assert result.metrics is not None and 0 <= result.metrics["pixel_accuracy"] <= 1
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert log[0].startswith("iteration,loss,lr") and len(log) == 11


def test_interrupt_saves_and_resume_continues_exactly(
    tiny_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = train(_config(tiny_voc, tmp_path / "a"))

    calls = {"n": 0}
    real_loss = train_module.F.cross_entropy

    def interrupted_on_third_step(*args: Any, **kw: Any) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_loss(*args, **kw)

    monkeypatch.setattr(train_module.F, "cross_entropy", interrupted_on_third_step)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_voc, tmp_path / "b"))
    monkeypatch.undo()
    saved = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert saved["iteration"] == 2  # the two finished steps were saved before exiting

    resumed = train(_config(tiny_voc, tmp_path / "b", resume=True))
    assert resumed.iteration == 4 and len(resumed.losses) == 2
    assert resumed.losses == straight.losses[2:]
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, config: TrainConfig, port: int, out: str) -> None:
    import os

    torch.set_num_threads(1)
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE="2",
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    result = train(config)
    torch.save(
        {"model": result.model.state_dict(), "confusion": result.confusion}, f"{out}/rank{rank}.pt"
    )
    torch.distributed.destroy_process_group()


@pytest.mark.xdist_group("fullfcn-heavy")
def test_ddp_on_two_cpu_processes(tiny_voc: Path, tmp_path: Path) -> None:
    """gloo, 2 processes: ranks end identical, and the validation confusion matrix summed
    over ranks equals the one a single process computes over the whole split."""
    config = _config(
        tiny_voc, tmp_path / "run", iterations=2, batch_size=1, val_split="val", val_every=2
    )
    mp.spawn(_ddp_worker, args=(config, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(r0["model"][k], r1["model"][k]) for k in r0["model"])
    assert torch.equal(r0["confusion"], r1["confusion"])

    model = build("fcn16s", width_divisor=WIDTH)
    model.load_state_dict(r0["model"])
    val = VOCSegmentation(tiny_voc, "val", transforms=eval_transforms(model.preprocess))
    single = confusion_matrix(model, eval_loader(val), torch.device("cpu"))
    assert torch.equal(single.matrix, r0["confusion"])
    assert int(single.matrix.sum()) > 0
    assert (tmp_path / "run" / "checkpoint.pt").exists()
