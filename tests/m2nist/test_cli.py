"""``m2nist-gen`` end to end: subprocess runs, bad inputs, interruption safety."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from m2nist.cli import main
from m2nist.verifier import verify

CLI = [sys.executable, "-m", "m2nist.cli"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)


def _source_args(mnist_source: str) -> list[str]:
    return ["--sample"] if mnist_source == "sample" else ["--mnist-dir", mnist_source]


def test_end_to_end_in_a_subprocess(tmp_path, mnist_source):
    out = tmp_path / "o"
    done = run_cli(
        str(out),
        *_source_args(mnist_source),
        "--train",
        "300",
        "--test",
        "100",
        "--format",
        "both",
        "--preview",
        str(out / "preview.png"),
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        r"wrote .*: train 300, test 100 images, .* MB in .*; preview .*preview\.png\n", done.stdout
    )
    assert (out / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checked = run_cli("--verify", str(out))
    assert checked.returncode == 0 and "OK" in checked.stdout
    again = run_cli(str(out), *_source_args(mnist_source), "--train", "300")
    assert again.returncode == 1 and "use --force" in again.stderr
    (out / "train.npz").write_bytes(b"garbage")
    broken = run_cli("--verify", str(out))
    assert broken.returncode == 1 and "bytes 7 differs from metadata.json" in broken.stderr


def test_help_has_examples():
    done = run_cli("--help")
    assert done.returncode == 0
    for text in ("examples:", "--verify", "--shard", "--sample", "M2NIST_MNIST_DIR"):
        assert text in done.stdout


def test_help_says_how_to_split_kaggle_flat():
    text = " ".join(run_cli("--help").stdout.split())
    assert "The last --test rows are a test set made from MNIST test digits only" in text
    assert "any other split of the rows puts images that share source digits" in text


def test_usage_errors_without_out(capsys, tmp_path):
    assert main([]) == 2
    assert "exactly one of OUT or --verify" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main([str(tmp_path / "file"), "--sample"]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["--verify", str(tmp_path / "nothing")]) == 1


def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path):
    done = run_cli(str(tmp_path / "o"), "--sample", "--digits", "9-9", "--margin", "4")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("m2nist-gen: error: cannot guarantee")
    assert not (tmp_path / "o").exists()


def _terminal_signals() -> None:
    """Give the child the SIGINT disposition of a program started at a terminal.

    A job a non-interactive shell starts in the background (CI runners may) inherits SIGINT
    *ignored*, and Python then installs no KeyboardInterrupt handler: Ctrl-C is ignored, as
    Unix intends. These tests are about what a user pressing Ctrl-C gets.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_and_wait_for_progress(out: Path) -> subprocess.Popen:
    """Start a long run and return once it reports rows written (temp files exist): three
    passes over its 400,000 rows, for the npz's images, labels and instances."""
    proc = subprocess.Popen(
        [*CLI, str(out), "--sample", "--train", "400000", "--test", "0", "--workers", "1"],
        stderr=subprocess.PIPE,
        preexec_fn=_terminal_signals,
    )
    seen = b""
    while not re.search(rb"\b[1-9]\d*/1200000", seen):
        chunk = proc.stderr.read1(256)
        assert chunk, f"generator ended early: {seen!r}"
        seen += chunk
    return proc


@pytest.mark.slow
def test_kill_midway_leaves_nothing_that_verifies(tmp_path):
    out = tmp_path / "killed"
    proc = _start_and_wait_for_progress(out)
    proc.kill()
    proc.wait()
    assert not (out / "train.npz").exists() and not (out / "metadata.json").exists()
    assert any(p.name.endswith(".partial") for p in out.iterdir())
    problems = verify(out)
    assert problems and main(["--verify", str(out)]) == 1
    # The rerun removes what the dead run left (its lock died with it) and verifies.
    assert main([str(out), "--sample", "--train", "20", "--test", "5", "--quiet"]) == 0
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]
    assert verify(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_removes_temporary_files(tmp_path, sig):
    out = tmp_path / "interrupted"
    proc = _start_and_wait_for_progress(out)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == 130
    assert "interrupted" in proc.stderr.read().decode()
    assert list(out.iterdir()) == []


def test_force_overwrites_and_an_old_metadata_never_survives(tmp_path):
    out = tmp_path / "o"
    assert main([str(out), "--sample", "--train", "20", "--test", "5", "--quiet"]) == 0
    first = (out / "train.npz").read_bytes()
    assert (
        main(
            [
                str(out),
                "--sample",
                "--train",
                "20",
                "--test",
                "5",
                "--seed",
                "1",
                "--quiet",
                "--force",
            ]
        )
        == 0
    )
    assert (out / "train.npz").read_bytes() != first and verify(out) == []


def test_no_source_is_one_line_listing_the_options(monkeypatch, tmp_path, capsys):
    from m2nist import mnist

    def offline():
        raise RuntimeError("Error downloading train-images:\nTried https://...\n got: offline")

    monkeypatch.setattr(mnist, "download_raw_dir", offline)
    monkeypatch.delenv("M2NIST_MNIST_DIR", raising=False)
    monkeypatch.setenv("M2NIST_HOME", str(tmp_path / "cache"))
    assert main([str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--mnist-dir" in err and "--sample" in err
    assert not (tmp_path / "o").exists()


def test_a_closed_stderr_is_not_a_crash(tmp_path):
    done = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m m2nist.cli {tmp_path}/o --sample --size 1x1 2>&-'],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2 and not (tmp_path / "o").exists()
