"""Training and inference speed of FCN-32s/16s/8s/8s-at-once, beside the published peer.

The peer is wkentaro/pytorch-fcn, published as ``torchfcn`` 1.9.7 (MIT): the PyTorch port
of the paper's Caffe nets. Both nets run in one process on the same input, alternately
(each timing round runs ours, then the peer's), so that both see the same machine and
load. For every variant the benchmark prints:

* **agreement**: the peer's net loaded with our state dict (the layer names and shapes
  are the same), both fed the same image: the largest difference of their score maps,
  relative to the largest score. Near float32 rounding, it says the two compute the
  same function (same crops, same upsampling), so the timings compare like with like;
* **train img/s**: one step = forward, summed cross-entropy against a random label,
  backward, at batch 1 (the paper's setting);
* **infer img/s**: forward under ``torch.inference_mode()``, as ``fullfcn.evaluate`` runs;
* on CUDA, our nets also with AMP (float16 autocast) + channels_last, their speed as a
  multiple of the peer's float32 step (the goal: >= 1.3x), and the AMP score maps'
  largest difference from float32, relative to the largest score.

Weights are random (He-normal, so that scores are not the zeros of a fresh FCN's score
layers): speed does not depend on them. 500x375 is the typical VOC image.

    pip install -e '.[bench]' && pip install --no-deps torchfcn==1.9.7   # the peer
    python benchmarks/bench_fullfcn.py                       # CPU, float32
    python benchmarks/bench_fullfcn.py --device cuda         # + AMP and channels_last

``pip install torchfcn`` with its dependencies fails (``fcn`` -> ``chainer`` needs
``pkg_resources`` to build); torchfcn uses ``fcn`` only to download weights, so an empty
module stands in for it. Without torchfcn the benchmark times our nets alone and says so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fcnbase import available_cores
from fcnbase.device import cpu_name
from fullfcn.builders import build
from fullfcn.evaluate import autocast
from fullfcn.model import VARIANTS

#: Our variant -> the peer's class of the same net.
PEER_NETS = {
    "fcn32s": "FCN32s",
    "fcn16s": "FCN16s",
    "fcn8s": "FCN8s",
    "fcn8s_atonce": "FCN8sAtOnce",
}


@dataclass(frozen=True)
class Mode:
    """How a net runs: float16 autocast or not, channels_last memory or not."""

    name: str
    amp: bool
    channels_last: bool


FP32 = Mode("fp32", amp=False, channels_last=False)
AMP_CL = Mode("AMP + channels_last", amp=True, channels_last=True)


def peer_models() -> types.ModuleType | None:
    """``torchfcn.models``, or None when the peer is not installed."""
    sys.modules.setdefault("fcn", types.ModuleType("fcn"))  # only its weight download uses it
    try:
        import torchfcn.models
    except ImportError:
        return None
    return torchfcn.models


def randomise(model: nn.Module, seed: int) -> None:
    """He-normal weights, zero biases: activations keep their scale through the layers."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            else:
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / fan_in) ** 0.5)


def relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest |a - b| over the largest |b|."""
    a, b = a.float(), b.float()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


class Timed:
    """A net in one mode, with its training step and its inference call on one input."""

    def __init__(self, model: nn.Module, mode: Mode, device: torch.device, size: tuple[int, int]):
        fmt = torch.channels_last if mode.channels_last else torch.contiguous_format
        self.model = model.to(device).to(memory_format=fmt)
        self.mode, self.device = mode, device
        gen = torch.Generator().manual_seed(1)
        self.x = torch.randn(1, 3, *size, generator=gen).to(device).to(memory_format=fmt)
        self.y = torch.randint(0, 21, (1, *size), generator=gen).to(device)

    def train_step(self) -> None:
        self.model.train()
        with autocast(self.device, self.mode.amp):
            scores = self.model(self.x)
        F.cross_entropy(scores.float(), self.y, reduction="sum").backward()
        self.model.zero_grad(set_to_none=True)

    def infer(self) -> torch.Tensor:
        self.model.eval()
        with torch.inference_mode(), autocast(self.device, self.mode.amp):
            return self.model(self.x)


def images_per_second(fn: Callable[[], object], device: torch.device, iterations: int) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return iterations / (time.perf_counter() - start)


def compare(nets: dict[str, Timed], device: torch.device, rounds: int, iterations: int) -> dict:
    """Median train and inference img/s of each net, timed in alternating rounds."""
    for net in nets.values():  # warm-up: allocator, cuDNN's algorithm search
        net.train_step()
        net.infer()
    train: dict[str, list[float]] = {k: [] for k in nets}
    infer: dict[str, list[float]] = {k: [] for k in nets}
    for _ in range(rounds):
        for key, net in nets.items():
            train[key].append(images_per_second(net.train_step, device, iterations))
            infer[key].append(images_per_second(net.infer, device, iterations))
    return {k: (statistics.median(train[k]), statistics.median(infer[k])) for k in nets}


def bench_variant(
    variant: str, peer: types.ModuleType | None, modes: list[Mode], args: argparse.Namespace
) -> None:
    device, size = torch.device(args.device), (args.height, args.width)
    ours = build(variant)
    randomise(ours, seed=0)
    nets: dict[str, Timed] = {}
    for mode in modes:
        model = build(variant)
        model.load_state_dict(ours.state_dict())
        nets[f"ours, {mode.name}"] = Timed(model, mode, device, size)
    notes = []
    if peer is not None:
        theirs = getattr(peer, PEER_NETS[variant])(n_class=21)
        theirs.load_state_dict(ours.state_dict())
        nets["torchfcn, fp32"] = Timed(theirs, FP32, device, size)
        reference = nets["ours, fp32"].infer()
        gap = relative_gap(nets["torchfcn, fp32"].infer(), reference)
        notes.append(
            f"agreement with torchfcn (same weights, fp32): {gap:.1e} "
            f"(scores up to {float(reference.abs().max()):.2f})"
        )
    if AMP_CL in modes:
        gap = relative_gap(nets[f"ours, {AMP_CL.name}"].infer(), nets["ours, fp32"].infer())
        notes.append(f"AMP scores vs fp32: {gap:.1e}")
    figures = compare(nets, device, args.rounds, args.iterations)
    reference = figures.get("torchfcn, fp32")
    for key, (train_ips, infer_ips) in figures.items():
        versus = (
            f"{train_ips / reference[0]:.2f}x / {infer_ips / reference[1]:.2f}x"
            if reference is not None
            else "(no peer)"
        )
        print(
            f"| {variant} | {key} | {train_ips:.3f} | {1000 / train_ips:.0f} | {infer_ips:.3f} "
            f"| {versus} |",
            flush=True,
        )
    for note in notes:
        print(f"|   | {variant}: {note} | | | | |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--rounds", type=int, default=3, help="alternating timing rounds")
    p.add_argument("--iterations", type=int, default=2, help="steps per net per round")
    p.add_argument("--height", type=int, default=375)
    p.add_argument("--width", type=int, default=500)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: free cores)")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads or available_cores())
        name = f"{cpu_name()}, {torch.get_num_threads()} thread(s)"
    else:
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    modes = [FP32, AMP_CL] if device.type == "cuda" else [FP32]
    peer = peer_models()
    print(
        f"# {name}; torch {torch.__version__}; {args.height}x{args.width}, batch 1; "
        f"peer: {'torchfcn (wkentaro/pytorch-fcn)' if peer else 'torchfcn not installed'}; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    if device.type == "cpu":
        print("# AMP is CUDA-only in fullfcn: the CPU runs float32")
    print(
        "| variant | net, mode | train img/s | ms/step | infer img/s "
        "| vs torchfcn fp32 (train / infer) |"
    )
    print("|---|---|---|---|---|---|")
    for variant in args.variants:
        bench_variant(variant, peer, modes, args)
    print(f"# load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
