"""``scripts/make_pretrained.py`` refuses, before any training, what would lose or fake weights.

Making the weights takes many minutes (its determinism is the loop's, tested in
test_loop.py); these cases all stop within a second, each as one stderr line with
nothing changed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.cli_table import assert_refused

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_pretrained.py"
_spec = importlib.util.spec_from_file_location("make_pretrained", SCRIPT)
assert _spec is not None and _spec.loader is not None
make_pretrained = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_pretrained)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--variants", "fcn8s"], 2, "invalid choice: 'fcn8s'"),
        (["--epochs", "0"], 2, "--epochs must be > 0"),
        (["--variants", "fcn1s", "--mnist-dir", "{root}/nowhere"], 1, "nowhere"),
        (["--variants", "fcn1s", "--mnist-dir", "{root}/fake"], 1, "fake"),
        (["--variants", "fcn4s", "fcn2s"], 1, "fcn4s.pt exists (use --force"),
    ],
)
def test_refused_before_any_training(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    code: int,
    message: str,
) -> None:
    monkeypatch.delenv("M2NIST_MNIST_DIR", raising=False)
    (tmp_path / "fake").mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (tmp_path / "fake" / name).write_bytes(b"\0" * 64)  # not MNIST at all
    out = tmp_path / "weights"
    out.mkdir()
    (out / "fcn4s.pt").write_bytes(b"someone's weights")
    args = ["--out", str(out), "--mnist-dir", str(tmp_path / "fake")]
    args += [arg.format(root=tmp_path) for arg in argv]
    assert_refused(capsys, make_pretrained.main, args, code, message, root=tmp_path)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [([], 2, "give --mnist-dir"), (["--mnist-dir", "{root}"], 1, "missing train-images")],
)
def test_a_refused_run_creates_no_folder(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    code: int,
    message: str,
) -> None:
    monkeypatch.delenv("M2NIST_MNIST_DIR", raising=False)
    args = ["--out", str(tmp_path / "new" / "weights")]
    args += [arg.format(root=tmp_path) for arg in argv]
    assert_refused(capsys, make_pretrained.main, args, code, message, root=tmp_path)
    assert not (tmp_path / "new").exists()
