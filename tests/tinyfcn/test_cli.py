"""``tinyfcn-train``: every bad input refused as one line, no result ever lost, Ctrl-C saves.

Runs are tiny (8-16 images, 1-2 steps, no classifier unless the case is about it) on real
MNIST: the IDX folder when ``M2NIST_MNIST_DIR`` is set, else m2nist's bundled sample.
"""

from __future__ import annotations

import pathlib
import signal
from pathlib import Path

import pytest
import torch

from fcnbase import lock_dir
from fcnbase.outputs import PARTIAL, is_partial
from tests.cli_table import assert_refused
from tests.tinyfcn.test_data import m2nist_folder
from tinyfcn import TinyFCN, TrainConfig, load_checkpoint, save_checkpoint
from tinyfcn.cli import main


@pytest.fixture(scope="module")
def m2nist_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as ``m2nist-gen`` writes it: 16 train and 4 test images, TINY's sizes."""
    return m2nist_folder(tmp_path_factory.mktemp("m2nist") / "out")


def _source(mnist_source: str) -> list[str]:
    return ["--sample"] if mnist_source == "sample" else ["--mnist-dir", mnist_source]


#: A tiny run without the classifier: 16 images in batches of 8 is 2 steps an epoch.
TINY = [
    "--variant", "fcn2s", "--no-pretrained",
    "--epochs", "1", "--seconds", "0", "--batch-size", "8", "--eval-every", "0", "--no-progress",
]  # fmt: skip
#: TINY's images, generated in memory.
IMAGES = ["--train-images", "16", "--test-images", "4"]


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


# (argv, exit code, message): "{root}" is the test's folder, "{data}" the MNIST options.
# Every case writes into {root}/out, the only path a refused run may create.
CASES = [
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
    (["--data", "{root}/m2nist", "--train-images", "8"], 2, "--data brings its own images"),
]


@pytest.mark.parametrize(("argv", "code", "message"), CASES, ids=[c[2][:40] for c in CASES])
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
            args += _source(mnist_source)
        elif arg == "--pretrained-budget":  # the classifier cannot fit in 1 ms
            args.remove("--no-pretrained")
            args += ["--seconds", "0.001"]
        else:
            args.append(arg.format(root=tmp_path))
    fresh = [tmp_path / "out", tmp_path / "empty-cache"]
    assert_refused(capsys, main, args, code, message, root=tmp_path, fresh=fresh)
    assert not (tmp_path / "pwned").exists()


def test_end_to_end_rerun_refuses_and_force_replaces(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mnist_source: str
) -> None:
    """A finished result survives a re-run; --force replaces it, with the same weights for
    the same seed and thread count (the file's bytes differ: it records the run's wall-clock
    time)."""
    argv = [*TINY, *IMAGES, *_source(mnist_source), "--out", str(tmp_path)]
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
    assert main([*argv, "--resume", str(checkpoint)]) == 0
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
    assert main([*TINY, *IMAGES, *_source(mnist_source), "--out", str(tmp_path)]) == 130
    assert "checkpoint saved to" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "fcn2s.pt")[1]["train_state"]["step"] == 1


def test_interrupt_before_any_fcn_step_saves_nothing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mnist_source: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _interrupt_on(monkeypatch, 1, signal_it=False)
    assert main([*TINY, *IMAGES, *_source(mnist_source), "--out", str(tmp_path)]) == 130
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
