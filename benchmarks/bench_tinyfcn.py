"""Benchmark: the tiny FCN from scratch on real M2NIST within a wall-clock budget.

    python benchmarks/bench_tinyfcn.py                 # the default recipe
    python benchmarks/bench_tinyfcn.py --ablation      # + the article's decoder, no pretraining,
                                                       #   and the classifier trained alone

Each run trains the MNIST classifier, converts it, trains the FCN on 5,000 M2NIST train
images and evaluates mean IoU over the 11 classes on 1,000 test images made from MNIST test
digits, every ``--eval-every`` seconds (the clock is paused while evaluating). The clock
starts before the data is generated, so ``seconds`` is the whole recipe. MNIST is found as
the tests find it: ``$M2NIST_MNIST_DIR``. The last line is ``miou=<float> seconds=<float>``
for the default recipe.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

from tinyfcn import TrainConfig, run, train_classifier


def _curve(history: list[dict[str, object]]) -> str:
    return "\n".join(
        f"  {h['seconds']:7.1f} s  step {h['step']:6d}  mIoU {h['mean_iou']:.4f}  "
        f"pixel acc {h['pixel_accuracy']:.4f}"
        for h in history
    )


def main() -> int:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=defaults.seconds)
    p.add_argument("--eval-every", type=float, default=defaults.eval_every)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--ablation", action="store_true", help="also the article and no-pretraining")
    p.add_argument("--json", type=Path, help="write every run's history here")
    args = p.parse_args()
    if not os.environ.get("M2NIST_MNIST_DIR"):
        print("bench_tinyfcn: error: set M2NIST_MNIST_DIR to the MNIST IDX folder", file=sys.stderr)
        return 1
    base = replace(defaults, seconds=args.seconds, eval_every=args.eval_every, seed=args.seed)
    runs = {"default": base}
    if args.ablation:
        runs["article decoder"] = replace(base, variant="article")
        runs["no classifier weights"] = replace(base, pretrained=False)
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {load[0]:.2f}")
    if args.ablation:
        # The classifier on its own, trained the usual way (centred digits, more epochs):
        # the recipe above trains it shorter and with shifts, which suits segmentation.
        alone = replace(base, classifier_epochs=6.0, classifier_shift=0)
        _, accuracy, seconds = train_classifier(alone, progress=False)
        print(f"classifier alone: 6 epochs, no shift: MNIST test {accuracy:.4f} in {seconds:.1f} s")
    results = {}
    for name, config in runs.items():
        result = run(config, progress=False)
        results[name] = result
        clf = (
            f", classifier {result.classifier_accuracy:.4f} in {result.classifier_seconds:.1f} s"
            if result.classifier_accuracy is not None
            else ""
        )
        print(f"{name}: {config.variant}{clf}\n{_curve(result.history)}", flush=True)
    if args.json is not None:
        payload = {
            name: {"config": asdict(r.config), "history": r.history, "seconds": r.seconds}
            for name, r in results.items()
        }
        args.json.write_text(json.dumps(payload, indent=1))
    if len(results) > 1:
        print("| run | variant | mIoU | pixel acc | seconds |\n|---|---|---|---|---|")
        for name, r in results.items():
            print(
                f"| {name} | {r.config.variant} | {r.metrics['mean_iou']:.4f} | "
                f"{r.metrics['pixel_accuracy']:.4f} | {r.seconds:.1f} |"
            )
    print(f"load after {os.getloadavg()[0]:.2f}")
    final = results["default"]
    print(f"miou={final.metrics['mean_iou']:.4f} seconds={final.seconds:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
