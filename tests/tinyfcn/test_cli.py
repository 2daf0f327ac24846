"""``tinyfcn-train``: no result ever lost, Ctrl-C saves (its bad inputs: ``test_bad_inputs.py``).

Runs are tiny (8-16 images, 1-2 steps, no classifier unless the case is about it) on real
MNIST: the IDX folder when ``M2NIST_MNIST_DIR`` is set, else m2nist's bundled sample.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch

from fcnbase import lock_dir
from fcnbase.outputs import PARTIAL, is_partial, temp_path
from tests.cli_table import assert_refused
from tests.tinyfcn.conftest import IMAGES, TINY, mnist_args
from tinyfcn import TinyFCN, load_checkpoint
from tinyfcn.cli import main


def test_end_to_end_rerun_refuses_and_force_replaces(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mnist_source: str
) -> None:
    """A finished result survives a re-run; --force replaces it, with the same weights for
    the same seed and thread count (the file's bytes differ: it records the run's wall-clock
    time)."""
    argv = [*TINY, *IMAGES, *mnist_args(mnist_source), "--out", str(tmp_path)]
    threads = torch.get_num_threads()
    assert main([*argv, "--threads", "1"]) == 0
    assert torch.get_num_threads() == threads  # the run's count does not outlive it
    out = capsys.readouterr().out.strip().splitlines()
    assert "threads 1" in out and any(line.strip().startswith("background") for line in out)
    last = out[-1]
    assert last.startswith("miou=") and " seconds=" in last, last
    checkpoint, picture = tmp_path / "fcn2s.pt", tmp_path / "fcn2s.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model, saved = load_checkpoint(checkpoint)
    assert saved["train_state"]["step"] == 2
    assert model(torch.zeros(1, 1, 64, 84)).shape == (1, 11, 64, 84)
    first = saved["state_dict"]

    checkpoint.write_bytes(b"the user's own result")
    assert main(argv) == 1
    assert "fcn2s.pt exists (use --force" in capsys.readouterr().err
    assert checkpoint.read_bytes() == b"the user's own result"

    leftover = tmp_path / f".fcn2s.pt.abc123{PARTIAL}"  # the trace of a killed run
    assert is_partial(leftover.name)
    leftover.write_bytes(b"half")
    assert main([*argv, "--threads", "1", "--force"]) == 0
    replaced = load_checkpoint(checkpoint)[1]["state_dict"]  # the same seed's weights
    assert all(torch.equal(first[k], v) for k, v in replaced.items())
    assert not leftover.exists()


def _interrupt_on(monkeypatch: pytest.MonkeyPatch, call: int, *, signal_it: bool) -> None:
    """Make the ``call``-th training forward pass be where Ctrl-C strikes: raised there
    directly, or (``signal_it``) delivered there as a real SIGINT."""
    forward = TinyFCN.forward
    calls = 0

    def striking(self: TinyFCN, x: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        if self.training:
            calls += 1
            if calls == call:
                if not signal_it:
                    raise KeyboardInterrupt
                signal.raise_signal(signal.SIGINT)
        return forward(self, x)

    monkeypatch.setattr(TinyFCN, "forward", striking)


def test_interrupt_saves_a_checkpoint_that_resumes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    m2nist_out: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the splits of a folder m2nist-gen wrote (--data), whose image counts the
    checkpoint records."""
    argv = [*TINY, "--data", str(m2nist_out), "--out", str(tmp_path), "--epochs", "2"]
    _interrupt_on(monkeypatch, 2, signal_it=False)
    assert main(argv) == 130
    checkpoint = tmp_path / "fcn2s.pt"
    assert capsys.readouterr().err.strip() == (
        f"tinyfcn-train: interrupted; checkpoint saved to {checkpoint}"
    )
    assert load_checkpoint(checkpoint)[1]["train_state"]["step"] == 1
    assert not (tmp_path / "fcn2s.png").exists()
    monkeypatch.undo()
    half = temp_path(checkpoint)  # a later save, killed outright half way
    half.write_bytes(b"half")
    assert main([*argv, "--resume", str(checkpoint)]) == 0
    assert not half.exists()
    _, saved = load_checkpoint(checkpoint)
    assert saved["train_state"]["step"] == 4  # continued to the 2-epoch budget
    assert (saved["config"]["train_images"], saved["config"]["test_images"]) == (16, 4)
    assert (tmp_path / "fcn2s.png").is_file()


def test_a_signal_waits_for_the_step_it_interrupts(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mnist_source: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGINT during step 1's forward pass: step 1 completes, then the run stops and saves."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's Ctrl-C here")
    _interrupt_on(monkeypatch, 1, signal_it=True)
    assert main([*TINY, *IMAGES, *mnist_args(mnist_source), "--out", str(tmp_path)]) == 130
    assert "checkpoint saved to" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "fcn2s.pt")[1]["train_state"]["step"] == 1


def test_interrupt_before_any_fcn_step_saves_nothing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mnist_source: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _interrupt_on(monkeypatch, 1, signal_it=False)
    assert main([*TINY, *IMAGES, *mnist_args(mnist_source), "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "tinyfcn-train: interrupted; no FCN step was made; nothing saved"
    assert list(tmp_path.iterdir()) == []


def test_a_folder_another_run_holds_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with lock_dir(tmp_path):  # what a running tinyfcn-train holds on its OUT
        assert_refused(
            capsys, main, [*TINY, "--out", str(tmp_path)], 1, "another run is writing",
            root=tmp_path,
        )  # fmt: skip
