"""Forward+backward throughput and peak memory of FCN-32s/16s/8s at 500x375, batch 1.

500x375 is the typical PASCAL VOC image; batch 1 is the paper's training setting. One
step = forward, summed cross-entropy against a random label, backward (what training
costs per image). CPU memory is the process's peak RSS (``resource``), which includes
the Python runtime and the weights; CUDA memory is ``torch.cuda.max_memory_allocated``.

    python benchmarks/bench_fullfcn.py                      # fp32 on the CPU
    python benchmarks/bench_fullfcn.py --device cuda --amp --channels-last
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import torch
import torch.nn.functional as F

from fullfcn.builders import build
from fullfcn.evaluate import autocast
from fullfcn.model import VARIANTS


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def bench(
    variant: str,
    device: torch.device,
    amp: bool,
    channels_last: bool,
    iterations: int,
    warmup: int,
    size: tuple[int, int],
) -> tuple[float, float]:
    """Images per second and peak memory (MiB) of training steps of ``variant``."""
    model = build(variant).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=memory_format).train()
    x = torch.randn(1, 3, *size, device=device).to(memory_format=memory_format)
    y = torch.randint(0, model.num_classes, (1, *size), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        with autocast(device, amp):
            scores = model(x)
        F.cross_entropy(scores.float(), y, reduction="sum").backward()
        model.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return iterations / (time.perf_counter() - start), _peak_mib(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="float16 autocast (CUDA)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS[:3]), choices=VARIANTS)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--height", type=int, default=375)
    p.add_argument("--width", type=int, default=500)
    args = p.parse_args()
    device = torch.device(args.device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    print(
        f"# {name}; torch {torch.__version__}; {args.height}x{args.width}, batch 1, "
        f"{'AMP fp16' if args.amp else 'fp32'}{', channels_last' if args.channels_last else ''}"
    )
    print("| variant | forward+backward img/s | ms/img | peak memory (MiB) |")
    print("|---|---|---|---|")
    for variant in args.variants:
        ips, mib = bench(
            variant,
            device,
            args.amp,
            args.channels_last,
            args.iterations,
            args.warmup,
            (args.height, args.width),
        )
        print(f"| {variant} | {ips:.3f} | {1000 / ips:.0f} | {mib:.0f} |", flush=True)


if __name__ == "__main__":
    main()
