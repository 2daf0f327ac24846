"""``tinyfcn-train``: one-line errors, and a tiny end-to-end run on real MNIST."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tinyfcn import TinyFCN, TrainConfig, load_checkpoint, save_checkpoint
from tinyfcn.cli import main


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        status = main(argv)
        raise SystemExit(status)
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("tinyfcn-train: error: "), err
    assert "Traceback" not in err
    return err


def test_unknown_variant_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert "fcn8s" in _one_line_error(capsys, ["--variant", "fcn8s"])


def test_bad_number(capsys: pytest.CaptureFixture[str]) -> None:
    assert "batch_size must be >= 1" in _one_line_error(capsys, ["--batch-size", "0"])


def test_missing_checkpoint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = _one_line_error(capsys, ["--resume", str(tmp_path / "gone.pt")])
    assert "gone.pt does not exist" in err


def test_a_file_that_is_not_a_checkpoint_is_refused_before_any_data_is_made(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No MNIST anywhere: had the data been asked for first, this would be a data error.
    monkeypatch.delenv("M2NIST_MNIST_DIR", raising=False)
    monkeypatch.setenv("M2NIST_HOME", str(tmp_path / "empty-cache"))
    notes = tmp_path / "notes.pt"
    notes.write_text("not a checkpoint")
    err = _one_line_error(capsys, ["--resume", str(notes)])
    assert "notes.pt is not a readable tinyfcn checkpoint" in err


def test_missing_mnist_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = _one_line_error(capsys, ["--mnist-dir", str(tmp_path / "nowhere")])
    assert "nowhere" in err


def test_checkpoint_of_another_variant(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mnist_dir: Path
) -> None:
    path = tmp_path / "fcn4s.pt"
    save_checkpoint(path, TinyFCN("fcn4s"), TrainConfig(variant="fcn4s"))
    argv = ["--mnist-dir", str(mnist_dir), "--train-images", "8", "--test-images", "4"]
    err = _one_line_error(capsys, [*argv, "--variant", "fcn1s", "--resume", str(path)])
    assert "variant='fcn4s'" in err


def test_end_to_end(capsys: pytest.CaptureFixture[str], tmp_path: Path, mnist_dir: Path) -> None:
    """No classifier, a few steps: checks the files and the last line, not the accuracy."""
    argv = [
        "--mnist-dir", str(mnist_dir), "--out", str(tmp_path), "--variant", "fcn2s",
        "--train-images", "16", "--test-images", "8", "--no-pretrained", "--epochs", "1",
        "--seconds", "0", "--batch-size", "8", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("miou=") and " seconds=" in last, last
    assert (tmp_path / "fcn2s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model, saved = load_checkpoint(tmp_path / "fcn2s.pt")
    assert saved["train_state"]["step"] == 2
    assert model(torch.zeros(1, 1, 64, 84)).shape == (1, 11, 64, 84)
