"""The tables of bad inputs ``tinyfcn-train`` and ``tinyfcn-play`` refuse.

Each case: exit status, one stderr line naming the problem (never a traceback), and nothing
changed in the test's folder but the run's own fresh outputs (``tests/cli_table.assert_refused``).
The hostile files (checkpoints that lie, pickles that run code, folders that are not
m2nist's) are made for each case by :func:`_bad_inputs`.
"""

from __future__ import annotations

import pathlib
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.cli_table import assert_refused
from tests.tinyfcn.conftest import IMAGES, TINY, mnist_args
from tinyfcn import TinyFCN, TrainConfig, save_checkpoint
from tinyfcn.cli import main
from tinyfcn.play import Server
from tinyfcn.play import main as play_main


class Hostile:
    """Pickles to a call of ``Path.touch``: a weights_only load must refuse to make it."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (pathlib.Path.touch, (self.target,))


def _bad_inputs(root: Path, m2nist_out: Path) -> None:
    """Every kind of file a ``--resume`` or ``--data`` might be handed, under ``root``."""
    config = TrainConfig(variant="fcn2s", pretrained=False, epochs=1, seconds=None)
    good = root / "good.pt"
    save_checkpoint(good, TinyFCN("fcn2s", learnable_upsampling=True), config)
    saved = torch.load(good, weights_only=True)
    (root / "notes.pt").write_text("not a checkpoint")
    torch.save(Hostile(root / "pwned"), root / "hostile.pt")
    torch.save({"weights": torch.zeros(2)}, root / "foreign.pt")
    torch.save({"format": saved["format"]}, root / "keyless.pt")
    first = next(iter(saved["state_dict"]))
    torch.save(
        {**saved, "state_dict": {**saved["state_dict"], first: torch.zeros(3)}}, root / "shape.pt"
    )
    torch.save({**saved, "model": {**saved["model"], "num_classes": 0}}, root / "classes.pt")
    torch.save({**saved, "train_state": {"step": "x"}}, root / "step.pt")
    optimizer = {"state": {}, "param_groups": [{"params": [0, 1]}]}
    torch.save({**saved, "train_state": {"optimizer": optimizer}}, root / "optimizer.pt")
    save_checkpoint(root / "fcn4s.pt", TinyFCN("fcn4s"), TrainConfig(variant="fcn4s"))
    spent = {"step": 2, "elapsed": 1.0, "history": []}
    save_checkpoint(root / "spent.pt", TinyFCN("fcn2s", learnable_upsampling=True), config, spent)
    (root / "done").mkdir()
    (root / "done" / "fcn2s.pt").write_bytes(good.read_bytes())
    (root / "done" / "fcn2s.png").write_bytes(good.read_bytes())  # a checkpoint, misnamed
    (root / "a-file").write_text("")
    (root / "half").mkdir()  # an m2nist folder without its test split
    for name in ("train.npz", "metadata.json"):
        (root / "half" / name).write_bytes((m2nist_out / name).read_bytes())
    (root / "bare").mkdir()  # not an m2nist folder: its npz files are not m2nist's
    for name in ("train.npz", "test.npz"):
        (root / "bare" / name).write_bytes(b"not an npz file")
    (root / "m2nist").symlink_to(m2nist_out)
    (root / "wrong").mkdir()  # m2nist's files, but labels that are no class (255: "ignore")
    for name in ("train.npz", "test.npz"):
        with np.load(m2nist_out / name) as npz:
            np.savez(root / "wrong" / name, **{**npz, "labels": np.full_like(npz["labels"], 255)})


# (argv, exit code, message): "{root}" is the test's folder, "{data}" the MNIST options.
# Every case writes into {root}/out, the only path a refused run may create.
BAD_INPUTS = [
    (["--variant", "fcn8s"], 2, "invalid choice: 'fcn8s'"),
    (["--batch-size", "0"], 2, "argument --batch-size: 0 is outside"),
    (["--seconds", "nan"], 2, "expected a finite number, got 'nan'"),
    (["--seconds", "inf"], 2, "expected a finite number, got 'inf'"),
    (["--train-images", "1" + "0" * 30], 2, "argument --train-images"),
    (["--test-images", "-5"], 2, "argument --test-images"),
    (["--epochs", "-1"], 2, "argument --epochs"),
    (["--lr", "0"], 2, "lr must be a finite number > 0"),
    (["--classifier-shift", "99"], 2, "argument --classifier-shift"),
    (["--seed", "x"], 2, "expected an integer"),
    (["--threads", "0"], 2, "argument --threads: 0 is outside"),
    (["--threads", "two"], 2, "argument --threads"),
    (["--classifier-epochs", "nan"], 2, "argument --classifier-epochs"),
    (["--sample", "--mnist-dir", "{root}"], 2, "not allowed with"),
    (["--device", "cuda:99"], 2, "--device cuda:99"),
    (["--device", "potato"], 2, "not a torch device"),
    (["--resume", "{root}/gone.pt"], 1, "gone.pt does not exist"),
    (["--resume", "{root}/notes.pt"], 1, "notes.pt is not a readable tinyfcn checkpoint"),
    (["--resume", "{root}/hostile.pt"], 1, "hostile.pt is not a readable tinyfcn checkpoint"),
    (["--resume", "{root}/foreign.pt"], 1, "foreign.pt is not a tinyfcn checkpoint"),
    (["--resume", "{root}/keyless.pt"], 1, "keyless.pt lacks config, model, state_dict"),
    (["--resume", "{root}/shape.pt"], 1, "shape.pt: size mismatch for"),
    (["--resume", "{root}/classes.pt"], 1, "classes.pt: model num_classes 0"),
    (["--resume", "{root}/step.pt"], 1, "step.pt: train_state step 'x'"),
    (["--resume", "{root}/optimizer.pt"], 1, "optimizer.pt: its optimizer state does not"),
    (["--resume", "{root}/fcn4s.pt"], 1, "holds a variant='fcn4s' model"),
    (["--out", "{root}/done"], 1, "done/fcn2s.pt exists (use --force"),
    (["--out", "{root}/done", "--resume", "{root}/good.pt"], 1, "fcn2s.pt exists"),
    (["--out", "{root}/a-file"], 1, "a-file exists and is not a directory"),
    (["--out", "{root}/a-file/sub"], 1, "a-file is not a directory"),
    (["--out", "{root}/done", "--resume", "{root}/done/fcn2s.png", "--force"], 2, "is also an"),
    (["--mnist-dir", "{root}/nowhere"], 1, "nowhere"),
    (["--resume", "{root}/spent.pt", "{data}"], 1, "no FCN step fits in the budget"),
    (["{data}", "--no-pretrained", "--seconds", "1e-9"], 1, "no FCN step fits in the budget"),
    (["{data}", "--pretrained-budget"], 1, "cannot cover"),
    (["--data", "{root}/nowhere"], 1, "nowhere/train.npz not found"),
    (["--data", "{root}/done"], 1, "done/train.npz not found"),
    (["--data", "{root}/half"], 1, "half/test.npz not found"),
    (["--data", "{root}/bare"], 1, "bare/train.npz"),
    # Refused before the classifier trains (it would need MNIST, which this test hides).
    (["--data", "{root}/wrong", "--pretrained"], 1, "wrong/train.npz: expected labels 0-10"),
    (["--data", "{root}/m2nist", "--train-images", "8"], 2, "--data brings its own images"),
]


@pytest.mark.parametrize(
    ("argv", "code", "message"), BAD_INPUTS, ids=[c[2][:40] for c in BAD_INPUTS]
)
def test_bad_input_is_refused(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mnist_source: str,
    monkeypatch: pytest.MonkeyPatch,
    m2nist_out: Path,
    argv: list[str],
    code: int,
    message: str,
) -> None:
    # No MNIST unless the case names it: a check that came after the data would show.
    monkeypatch.delenv("M2NIST_MNIST_DIR", raising=False)
    monkeypatch.setenv("M2NIST_HOME", str(tmp_path / "empty-cache"))
    _bad_inputs(tmp_path, m2nist_out)
    images = [] if "--data" in argv else IMAGES
    args: list[str] = [*TINY, *images, "--out", str(tmp_path / "out")]
    for arg in argv:
        if arg == "{data}":
            args += mnist_args(mnist_source)
        elif arg == "--pretrained-budget":  # the classifier cannot fit in 1 ms
            args.remove("--no-pretrained")
            args += ["--seconds", "0.001"]
        elif arg == "--pretrained":
            args.remove("--no-pretrained")
        else:
            args.append(arg.format(root=tmp_path))
    fresh = [tmp_path / "out", tmp_path / "empty-cache"]
    assert_refused(capsys, main, args, code, message, root=tmp_path, fresh=fresh)
    assert not (tmp_path / "pwned").exists()


# tinyfcn-play: (argv, exit code, message); "{busy}" is a port another socket listens on.
PLAY_BAD_INPUTS = [
    (["--port", "70000"], 2, "argument --port: 70000 is outside 0..65535"),
    (["--port", "http"], 2, "argument --port: expected an integer"),
    (["--threads", "0"], 2, "argument --threads: 0 is outside"),
    (["--mnist-dir", "{root}/nowhere"], 1, "nowhere"),
    (["--port", "{busy}"], 1, "cannot listen on 127.0.0.1:{busy}: [Errno 98]"),
    (["--host", "192.0.2.1"], 1, "cannot listen on 192.0.2.1:0: [Errno 99]"),  # not this machine
]


@pytest.mark.parametrize(
    ("argv", "code", "message"), PLAY_BAD_INPUTS, ids=[c[2][:40] for c in PLAY_BAD_INPUTS]
)
def test_play_bad_input_is_refused(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    code: int,
    message: str,
) -> None:
    def serve_forever(self: Server) -> None:  # a case that fails to fail must not hang
        raise AssertionError("the playground started serving")

    monkeypatch.setattr(Server, "serve_forever", serve_forever)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        names = {"root": tmp_path, "busy": busy.getsockname()[1]}
        args = ["--no-browser", *(arg.format(**names) for arg in argv)]
        assert_refused(capsys, play_main, args, code, message.format(**names), root=tmp_path)
