"""Make the pretrained tiny FCNs bundled as ``tinyfcn/weights/<variant>.pt``, reproducibly.

Each variant is trained by :func:`tinyfcn.run` from the default recipe (``TrainConfig()``)
on the real MNIST files, with two changes that make the result a function of the seed alone:

- the budget is **epochs, not wall-clock seconds** (:data:`EPOCHS`). A seconds budget trains
  as many steps as the machine manages, so a busy machine would ship a different, weaker
  net. 15 epochs of 5,000 images in batches of 4 (the default) are 18,750 steps: about what
  the 290-s default recipe makes on an idle 2-core machine (18,202 in docs/tinyfcn.md);
- **one thread**, the recipe's own (torch's CPU kernels split their sums differently with
  more threads, so the last bits, and after thousands of steps the weights, depend on the
  thread count).

Same seed, same MNIST, same torch -> same weights. The state dict is stored in float16
(half the bytes; the score recorded is the one of the float16 weights, as
:func:`tinyfcn.pretrained` loads them) and ``provenance.json`` / ``PROVENANCE.md`` beside
them record, per variant: the recipe, seed, MNIST md5s, torch version, git commit, steps,
seconds and mIoU / pixel accuracy on the 1,000 test images made from MNIST *test* digits.

    OMP_NUM_THREADS=1 python scripts/make_pretrained.py --mnist-dir DIR [--variants fcn1s]

Existing weights are replaced only with ``--force``; every file is written atomically, and
the provenance after each variant, so an interrupted run keeps the variants it finished.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from fcnbase import CliError, Parser, UsageError, atomic_write, check_outputs, run_cli
from fcnbase.device import cpu_name
from m2nist.mnist import load_idx_folder
from tinyfcn import VARIANTS, TrainConfig, evaluate, run

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tinyfcn" / "weights"
EPOCHS = 15.0
THREADS = 1


def _recipe(variant: str, mnist_dir: Path, epochs: float) -> TrainConfig:
    """The default recipe with a fixed budget in epochs (no clock, no history points) and a
    fixed thread count."""
    return replace(
        TrainConfig(),
        variant=variant,
        source=str(mnist_dir),
        epochs=epochs,
        seconds=None,
        eval_every=0.0,
        threads=THREADS,
    )


def _mnist_md5s(mnist_dir: Path) -> dict[str, str]:
    """The md5 of each MNIST file, refusing anything but the four originals."""
    md5s = {}
    for train in (True, False):
        for name, info in load_idx_folder(mnist_dir, train).source["files"].items():
            if info["verified"] != "md5":
                raise CliError(f"{mnist_dir / name}: not the original MNIST file (md5)")
            md5s[name] = info["md5_uncompressed"]
    return md5s


def _git_commit() -> dict[str, object]:
    """The commit this script ran from, and whether the package or the script differed."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "tinyfcn/*.py", "m2nist/*.py", "scripts")
    return {"commit": git("rev-parse", "HEAD") or "unknown", "uncommitted_changes": bool(changed)}


def _markdown(entries: dict[str, dict]) -> str:
    """PROVENANCE.md: the same facts as provenance.json, for people."""
    rows = "\n".join(
        f"| `{v}` | {e['test']['mean_iou']:.4f} | {e['test']['pixel_accuracy']:.4f} | "
        f"{e['steps']} | {e['seconds']:.0f} | {e['bytes']} | {e['git']['commit'][:7]}"
        f"{' (+ uncommitted changes)' if e['git']['uncommitted_changes'] else ''} |"
        for v, e in sorted(entries.items(), key=lambda item: VARIANTS.index(item[0]))
    )
    any_entry = next(iter(entries.values()))
    md5_rows = "\n".join(f"| {name} | {md5} |" for name, md5 in any_entry["mnist_md5"].items())
    fields = ", ".join(
        f"`{k}={v!r}`" for k, v in any_entry["recipe"].items() if k not in ("variant", "threads")
    )
    return f"""\
# Pretrained tiny FCNs -- provenance

`tinyfcn.pretrained(variant)` loads `<variant>.pt` from this folder: a float16 state dict of
`TinyFCN(variant, learnable_upsampling=True)`, opened with `torch.load(weights_only=True)`.
`provenance.json` holds everything below per variant, read by the tests.

| variant | mIoU | pixel acc | FCN steps | seconds | bytes | code (git commit) |
|---|---|---|---|---|---|---|
{rows}

mIoU (mean IoU over the 11 classes) and pixel accuracy are measured with the float16
weights as shipped, on the 1,000 test images of `load_m2nist(n_test=1000, seed=0)`: M2NIST
composed from MNIST *test* digits only. Seconds are the wall clock of the whole recipe
(data, classifier, FCN) on the machine named in `provenance.json`; they do not change the
weights, which depend only on the recipe, the seed, MNIST and torch. "Uncommitted changes"
means that some file of tinyfcn/, m2nist/ or scripts/ differed from that commit when the
variant was made.

## Recipe

`tinyfcn.run(TrainConfig(...))` with the default recipe and a fixed budget: {fields},
one thread (`threads={THREADS}`, `OMP_NUM_THREADS=1`), CPU.

## MNIST

The original IDX files, by Yann LeCun, Corinna Cortes and Christopher J.C. Burges
(CC BY-SA 3.0):

| file | md5 (uncompressed) |
|---|---|
{md5_rows}

## Rebuild

    OMP_NUM_THREADS=1 python scripts/make_pretrained.py --mnist-dir DIR --force

gives the same weights on the same torch (`torch` and `commit` in `provenance.json`).
"""


def _write_provenance(out: Path, entries: dict[str, dict]) -> None:
    with atomic_write(out / "provenance.json") as f:
        f.write((json.dumps(entries, indent=1, sort_keys=True) + "\n").encode())
    with atomic_write(out / "PROVENANCE.md") as f:
        f.write(_markdown(entries).encode())


def make(variant: str, mnist_dir: Path, out: Path, epochs: float) -> dict[str, object]:
    """Train one variant, save its float16 weights; return its provenance entry (the
    caller adds what every variant shares: MNIST md5s, git commit)."""
    config = _recipe(variant, mnist_dir, epochs)
    start = time.perf_counter()
    result = run(config, device=torch.device("cpu"), progress=False)
    seconds = time.perf_counter() - start
    half = {k: v.detach().to(torch.float16) for k, v in result.model.state_dict().items()}
    path = out / f"{variant}.pt"
    with atomic_write(path) as f:
        torch.save(half, f)
    shipped = result.model.float()
    shipped.load_state_dict({k: v.float() for k, v in half.items()})
    assert result.test is not None
    scores = evaluate(shipped, result.test)
    recipe = {**asdict(config), "source": "the MNIST files below"}
    return {
        "recipe": recipe,
        "model": shipped.config(),
        "seed": config.seed,
        "threads": config.threads,  # what the run used
        "steps": int(result.history[-1]["step"]),
        "seconds": round(seconds, 1),
        "classifier_accuracy": result.classifier_accuracy,
        "test": {
            "images": len(result.test),
            "mean_iou": scores["mean_iou"],
            "pixel_accuracy": scores["pixel_accuracy"],
            "mean_iou_float32": result.metrics["mean_iou"],
            "iou": scores["iou"],
        },
        "bytes": path.stat().st_size,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": f"{cpu_name()} ({platform.machine()}), {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}",
    }


def _main(argv: Sequence[str] | None) -> int:
    parser = Parser(
        prog="make_pretrained",
        description="Train the bundled pretrained tiny FCNs from the default recipe on real\n"
        "MNIST, with a budget of epochs and one thread, so the same seed gives the same\n"
        "weights; write <variant>.pt, provenance.json and PROVENANCE.md.",
        epilog="example:\n  OMP_NUM_THREADS=1 python scripts/make_pretrained.py "
        "--mnist-dir ~/data/mnist --variants fcn1s --force",
    )
    parser.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="which to make"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument(
        "--mnist-dir", type=Path, help="the four original MNIST IDX files (else M2NIST_MNIST_DIR)"
    )
    parser.add_argument(
        "--epochs",
        type=float,
        default=EPOCHS,
        help="FCN epochs; the shipped weights use the default (a smaller number tests the script)",
    )
    parser.add_argument("--force", action="store_true", help="replace existing weights")
    args = parser.parse_args(argv)
    mnist_dir = args.mnist_dir or os.environ.get("M2NIST_MNIST_DIR")
    if not mnist_dir:
        raise UsageError("give --mnist-dir or set M2NIST_MNIST_DIR (the real MNIST files)")
    mnist_dir = Path(mnist_dir)
    if not args.epochs > 0:
        raise UsageError(f"--epochs must be > 0, got {args.epochs}")
    check_outputs([args.out / f"{v}.pt" for v in args.variants], force=args.force)
    shared = {"mnist_md5": _mnist_md5s(mnist_dir), "git": _git_commit()}  # the code imported now
    args.out.mkdir(parents=True, exist_ok=True)  # only once every check has passed
    torch.set_num_threads(THREADS)
    known = args.out / "provenance.json"
    entries = json.loads(known.read_text()) if known.is_file() else {}
    for variant in args.variants:
        entry = make(variant, mnist_dir, args.out, args.epochs)
        entries[variant] = {**entry, **shared}
        _write_provenance(args.out, entries)  # after each variant: a kill keeps the others
        test = entry["test"]
        print(
            f"{variant}: mIoU {test['mean_iou']:.4f}, pixel acc {test['pixel_accuracy']:.4f}, "
            f"{entry['steps']} steps, {entry['seconds']:.0f} s, {entry['bytes']} bytes",
            flush=True,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 done, 1 runtime error, 2 usage error, 130 interrupted."""
    return run_cli("make_pretrained", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
