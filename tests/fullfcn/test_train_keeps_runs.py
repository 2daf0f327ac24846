"""fullfcn-train never destroys a run it did not make: a previous run in --out-dir is refused
(``--force`` starts over, removing only the run's own files), a folder another run holds is
refused, and a second Ctrl-C waits for the checkpoint the first one saves."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from fcnbase import is_partial, lock_dir
from fcnbase.outputs import temp_path
from fullfcn import cli
from fullfcn import train as train_module
from tests.fullfcn.conftest import WIDTH, make_voc


def _train_argv(voc: Path, out: Path, *extra: str) -> list[str]:
    return ["--voc-root", str(voc), "--out-dir", str(out), "--variant", "fcn32s",
            "--recipe", "modern", "--weights", "none", "--width-divisor", str(WIDTH),
            "--batch-size", "1", "--crop-size", "32", "--workers", "0", "--no-progress",
            "--no-tensorboard", *extra]  # fmt: skip


def _iteration(out: Path) -> int:
    return torch.load(out / "checkpoint.pt", weights_only=True)["iteration"]


def test_force_starts_over_and_removes_only_the_runs_own_files(
    tiny_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A re-run into a trained run's folder is refused, its checkpoint untouched; --force
    starts over with a fresh log (no stale row appended) and keeps the user's own files."""
    out = tmp_path / "run"
    assert cli.train_main(_train_argv(tiny_voc, out, "--iterations", "3")) == 0
    assert _iteration(out) == 3
    trained = (out / "checkpoint.pt").read_bytes()
    board = out / "tensorboard"
    board.mkdir()
    (board / "events.out.tfevents.1.host").write_bytes(b"old events")
    (out / "notes.md").write_text("the user's own file")

    assert cli.train_main(_train_argv(tiny_voc, out, "--iterations", "1")) == 1
    assert "holds a previous run" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == trained  # untouched

    assert cli.train_main(_train_argv(tiny_voc, out, "--iterations", "1", "--force")) == 0
    assert _iteration(out) == 1
    rows = list(csv.reader((out / "log.csv").open()))
    assert [r[0] for r in rows] == ["iteration", "1"]  # a fresh log, not appended
    assert not board.exists()  # --no-tensorboard rewrites no events: the stale ones went
    assert (out / "notes.md").read_text() == "the user's own file"


def test_a_locked_out_dir_is_refused(
    tiny_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with lock_dir(out):  # another run holds it
        assert cli.train_main(_train_argv(tiny_voc, out, "--iterations", "1")) == 1
    assert "another run is writing into this directory" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_double_ctrl_c_waits_for_the_save(
    tiny_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Ctrl-C at step 3 saves the two finished steps; a second Ctrl-C arriving during
    that save waits for it; the command exits 130 saying where the checkpoint is."""
    calls = {"n": 0}
    real_loss, real_checkpoint = train_module.F.cross_entropy, train_module.save_checkpoint

    def interrupted_on_third_step(*args: Any, **kw: Any) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_loss(*args, **kw)

    def impatient_save(*args: Any, **kw: Any) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, in the middle of the save
        real_checkpoint(*args, **kw)

    monkeypatch.setattr(train_module.F, "cross_entropy", interrupted_on_third_step)
    monkeypatch.setattr(train_module, "save_checkpoint", impatient_save)
    out = tmp_path / "run"
    argv = _train_argv(tiny_voc, out, "--iterations", "5", "--checkpoint-every", "100")
    # Ctrl-C as in a terminal (a background job may have inherited SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert cli.train_main(argv) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fullfcn-train: interrupted; checkpoint saved to {out / 'checkpoint.pt'}"]
    assert _iteration(out) == 2
    assert not [p for p in out.iterdir() if is_partial(p.name)]


def test_a_failure_after_training_saves_a_resumable_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A photo that breaks at the first validation must not cost the steps trained: the
    run saves them, as Ctrl-C does, says so in its one line, and --resume continues."""
    voc = make_voc(tmp_path / "voc", {"train": 2, "val": 1})
    photo = next((voc / "VOC2012" / "JPEGImages").glob("*_val_*.jpg"))
    good = photo.read_bytes()
    photo.write_bytes(good[: len(good) // 2])  # truncated: the header reads, the pixels do not
    out = tmp_path / "run"
    argv = _train_argv(
        voc, out, "--val-split", "val", "--val-every", "2", "--checkpoint-every", "100"
    )
    assert cli.train_main([*argv, "--iterations", "3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "truncated" in err[0]
    assert err[0].endswith(f"checkpoint saved to {out / 'checkpoint.pt'} (iteration 2: --resume)")
    assert _iteration(out) == 2
    photo.write_bytes(good)
    assert cli.train_main([*argv, "--iterations", "3", "--resume"]) == 0
    assert _iteration(out) == 3


def test_resume_after_a_kill_cuts_the_log_back_to_the_checkpoint(
    tiny_voc: Path, tmp_path: Path
) -> None:
    """``kill -9`` after iteration 3 of a run that saved at 2 leaves rows 1..3 in log.csv;
    the resumed run computes 3 again, and the log must hold each iteration once."""
    out = tmp_path / "run"
    assert cli.train_main(_train_argv(tiny_voc, out, "--iterations", "2")) == 0
    with (out / "log.csv").open("a") as f:  # what the killed run logged after its save
        f.write("3,0.5,0.01,1.0,,,,\n")
    half = temp_path(out / "checkpoint.pt")  # and the save it was killed in the middle of
    half.write_bytes(b"half a checkpoint")
    (out / "notes.partial").write_text("the user's")
    argv = _train_argv(tiny_voc, out, "--iterations", "4", "--resume")
    assert cli.train_main(argv) == 0
    assert not half.exists() and (out / "notes.partial").exists()
    rows = list(csv.reader((out / "log.csv").open()))
    assert [r[0] for r in rows] == ["iteration", "1", "2", "3", "4"]
    assert rows[3][1] != "0.5"  # the resumed run's row 3, not the dead one's
