"""Benchmark M2NIST generation: what a user of ``m2nist-gen`` waits for, and its memory.

    python benchmarks/bench_generate.py [--n 200000] [--repeat 3]

1. **Course set**: ``m2nist-gen OUT`` (5,000 train + 1,000 test images, the default npz
   format) as a whole process, a first run: nothing is kept between runs (target <= 0.5 s).
2. **Big set**: ``m2nist-gen OUT --train N --test 0`` as a whole process, and in the same
   run ``np.savez`` writing the very same arrays from memory into the same folder; printed
   with their ratio (savez seconds / generator seconds: higher is better).
3. **Flat memory**: the peak RSS of ``m2nist-gen`` at N / 4 and at N images, and their
   ratio (target <= 1.5).
4. **Composition**: ``m2nist.generate(100_000)`` in memory, best of three (target
   >= 100,000 images/s).

Each child runs as an installed package does (``PYTHONDONTWRITEBYTECODE`` removed: a
sandbox that sets it recompiles every module at each start). MNIST comes from
``$M2NIST_MNIST_DIR`` when set, else the bundled sample. The machine, its cores and the
load average before each figure are printed with it: on a shared machine, figures taken
under load are slower than the machine is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import m2nist
from fcnbase.device import available_cores, cpu_name

COMPOSE_N = 100_000


def _load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def generator(out: Path, source_args: list[str], train: int, test: int) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``m2nist-gen`` process writing into ``out``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cmd = [sys.executable, "-m", "m2nist.cli", str(out), "--quiet", *source_args]
    cmd += ["--train", str(train), "--test", str(test)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    shutil.rmtree(out)
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def compose_rate(source: str) -> tuple[float, float]:
    """Best wall-clock and CPU-time images/s of generate(COMPOSE_N) over three runs."""
    m2nist.generate(10, source=source)  # load the digits once
    best_wall = best_cpu = 0.0
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        m2nist.generate(COMPOSE_N, source=source)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best_wall, best_cpu = max(best_wall, COMPOSE_N / wall), max(best_cpu, COMPOSE_N / cpu)
    return best_wall, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="images of the big set")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: tmp)")
    args = parser.parse_args()
    mnist_dir = os.environ.get("M2NIST_MNIST_DIR")
    source = mnist_dir or "sample"
    source_args = ["--mnist-dir", mnist_dir] if mnist_dir else ["--sample"]
    print(
        f"machine: {cpu_name()} ({os.uname().machine}), {os.cpu_count()} CPUs, "
        f"{available_cores()} available; source: {source}"
    )
    with tempfile.TemporaryDirectory(prefix="m2nist-bench-", dir=args.dir) as tmp:
        out = Path(tmp) / "out"
        course = [generator(out, source_args, 5000, 1000)[0] for _ in range(args.repeat)]
        print(
            f"course set 5,000 + 1,000 (npz), first run: {statistics.median(course):.3f} s "
            f"median, best {min(course):.3f} s of {args.repeat} (target <= 0.5 s)  [{_load()}]"
        )
        rss = {}
        for n in (args.n // 4, args.n):
            load = _load()
            gen_s, rss[n] = generator(out, source_args, n, 0)
            print(f"  m2nist-gen --train {n:,}: {gen_s:.2f} s, peak RSS {rss[n]:.0f} MB  [{load}]")
        wall, cpu = compose_rate(source)
        print(
            f"composition: {wall:,.0f} img/s wall, {cpu:,.0f} img/s per CPU-second "
            f"(generate({COMPOSE_N:,}) in memory; target >= 100,000)  [{_load()}]"
        )
        # Only now does this process hold big arrays: a child's peak RSS counts the parent's
        # pages it was forked from, so every m2nist-gen above ran before them.
        arrays = m2nist.generate(args.n, source=source)
        load, start = _load(), time.perf_counter()
        np.savez(Path(tmp) / "savez.npz", **vars(arrays))
        savez_s = time.perf_counter() - start
        print(
            f"big set {args.n:,} images: m2nist-gen {gen_s:.2f} s end to end; np.savez of the "
            f"same arrays from memory {savez_s:.2f} s [{load}]: ratio {savez_s / gen_s:.2f}"
        )
    small, big = rss[args.n // 4], rss[args.n]
    print(
        f"memory: peak RSS {small:.0f} MB at {args.n // 4:,} images, {big:.0f} MB at "
        f"{args.n:,}: ratio {big / small:.2f} (target <= 1.5)"
    )


if __name__ == "__main__":
    main()
