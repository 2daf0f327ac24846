"""Benchmark M2NIST generation: in-memory composition and the end-to-end CLI.

    python benchmarks/bench_generate.py [N] [--small N] [--format npz|kaggle|both]

1. Composition: ``m2nist.generate`` of 100,000 train images (default parameters,
   images + label maps + instances + boxes) in memory, best of three.
2. End to end: ``m2nist-gen`` writing N images (default 100,000) in a subprocess,
   with its wall time and peak RSS (from ``os.wait4``), and the same for a smaller
   run, to show that memory does not grow with N.

MNIST comes from ``$M2NIST_MNIST_DIR`` when set, else the bundled sample. The last
line is ``images_per_s=<composition rate> peak_rss_mb=<end-to-end peak RSS for N>``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import m2nist
from m2nist.compose import default_workers

COMPOSE_N = 100_000


def compose_rate(source: str | None) -> tuple[float, float]:
    """Best wall-clock and CPU-time images/s of generate(COMPOSE_N) over three runs."""
    m2nist.generate(10, source=source)  # load and index the digits once
    best_wall = best_cpu = 0.0
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        m2nist.generate(COMPOSE_N, source=source)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best_wall, best_cpu = max(best_wall, COMPOSE_N / wall), max(best_cpu, COMPOSE_N / cpu)
    return best_wall, best_cpu


def end_to_end(n: int, source_args: list[str], fmt: str) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of ``m2nist-gen OUT --train n --test 0``."""
    with tempfile.TemporaryDirectory(prefix="m2nist-bench-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "m2nist.cli",
            os.path.join(tmp, "out"),
            "--train",
            str(n),
            "--test",
            "0",
            "--format",
            fmt,
            "--quiet",
            *source_args,
        ]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"m2nist-gen failed: {' '.join(cmd)}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000, help="end-to-end images")
    parser.add_argument("--small", type=int, default=30_000, help="smaller run for RSS check")
    parser.add_argument("--format", default="npz", choices=["npz", "kaggle", "both"])
    args = parser.parse_args()
    mnist_dir = os.environ.get("M2NIST_MNIST_DIR")
    source = mnist_dir or "sample"
    source_args = ["--mnist-dir", mnist_dir] if mnist_dir else ["--sample"]
    print(f"source: {source}; {default_workers()} worker threads; {os.cpu_count()} CPUs")
    # end to end first: a child forked from a process holding big arrays would count
    # them in its peak RSS
    small_s, small_rss = end_to_end(args.small, source_args, args.format)
    print(f"end to end {args.small:,}: {small_s:.1f} s, peak RSS {small_rss:.0f} MB")
    big_s, big_rss = end_to_end(args.n, source_args, args.format)
    print(
        f"end to end {args.n:,}: {big_s:.1f} s ({args.n / big_s:,.0f} img/s), "
        f"peak RSS {big_rss:.0f} MB ({big_rss / small_rss:.2f}x the {args.small:,} run)"
    )
    wall, cpu = compose_rate(source)
    print(
        f"composition: {wall:,.0f} img/s wall, {cpu:,.0f} img/s per CPU-second "
        f"(generate({COMPOSE_N:,}) in memory)"
    )
    print(f"images_per_s={wall:.1f} peak_rss_mb={big_rss:.1f}")


if __name__ == "__main__":
    main()
