"""Benchmark M2NIST generation against the machine's own write speed, in one run.

    python benchmarks/bench_generate.py [--n 200000] [--repeat 3] [--format npz]

1. **Big set**: ``m2nist-gen OUT --train N --test 0`` as a whole process, and a plain
   process writing the same number of bytes (16 MB ``write`` calls of random bytes, no
   fsync, as the generator does not sync either) into the same folder, alternated
   ``--repeat`` times so that both see the same load. Two speeds of each: *to the page
   cache* (the process's wall time) and *to the disk* (the process, then ``fsync`` of
   every file it wrote: the time until its bytes are stored). Every run starts after
   ``os.sync()``, with no other run's dirty pages still being written back. Printed:
   each pair (wall and CPU seconds), and the generator's speeds as ratios of the plain
   write's (target: >= 0.80).
2. **Course set**: ``m2nist-gen OUT --train 5000 --test 1000`` as a whole process
   (target: <= 0.4 s), against a plain process writing its bytes, with the digit-pool
   cache warm (what every run after the first gets) and off (``M2NIST_POOL_CACHE=0``: a
   first run).
3. **Composition**: ``m2nist.generate(100_000)`` in memory, best of three.
4. **Where the big set's CPU goes**: the work every byte needs, timed in this process
   (composing, its zip CRC-32, the sha256 that ``metadata.json`` records) and the plain
   write's CPU per byte, scaled to the big set; from them, the shortest wall time any
   design could reach on this machine's cores, and the one this design can (an ``.npz``
   is hashed once complete, since its first bytes hold its members' CRCs), each as the
   ratio to the plain write that it would give.

Each child runs as an installed package does (``PYTHONDONTWRITEBYTECODE`` removed: a
sandbox that sets it recompiles every module at each start). MNIST comes from
``$M2NIST_MNIST_DIR`` when set, else the bundled sample. The machine, its cores, the
worker threads and the load average before and after are printed with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import m2nist
from fcnbase.device import cpu_name
from m2nist.compose import default_workers

COMPOSE_N = 100_000
PLAIN = """
import os, sys
left, buf = int(sys.argv[2]), os.urandom(16 << 20)
with open(sys.argv[1], "wb") as f:
    while left > 0:
        left -= f.write(buf[: min(left, len(buf))])
"""


class Child:
    """A run's wall seconds (``wall``: the process; ``disk``: the process, then fsync of
    every file under ``written``), CPU seconds (user + system, all threads) and peak RSS
    (MB). It starts after ``os.sync()``: no earlier run's writeback shares the disk."""

    def __init__(self, cmd: list[str], env: dict[str, str], written: Path) -> None:
        os.sync()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        self.wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}")
        for path in [written, *written.rglob("*")] if written.is_dir() else [written]:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.disk = time.perf_counter() - start
        self.cpu = usage.ru_utime + usage.ru_stime
        self.rss = usage.ru_maxrss / 1024  # KiB on Linux


def _size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


class Runs:
    """Generator and plain-write runs in one scratch folder, emptied between runs."""

    def __init__(self, tmp: Path, source_args: list[str], fmt: str) -> None:
        self.tmp, self.source_args, self.fmt = tmp, source_args, fmt
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env["M2NIST_HOME"] = str(tmp / "home")  # a pool cache of the benchmark's own

    def generator(self, train: int, test: int, **env: str) -> tuple[Child, int]:
        out = self.tmp / "out"
        cmd = [sys.executable, "-m", "m2nist.cli", str(out), "--quiet", "--format", self.fmt]
        cmd += ["--train", str(train), "--test", str(test), *self.source_args]
        child = Child(cmd, {**self.env, **env}, out)
        size = _size(out)
        shutil.rmtree(out)
        return child, size

    def plain(self, size: int) -> Child:
        path = self.tmp / "plain.bin"
        child = Child([sys.executable, "-c", PLAIN, str(path), str(size)], self.env, path)
        path.unlink()
        return child


def _load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def big_set(runs: Runs, n: int, repeat: int) -> tuple[int, float, float]:
    """Print the runs; return the bytes, the median plain wall and CPU seconds."""
    cache, disk, plains = [], [], []
    for i in range(repeat):
        gen, size = runs.generator(n, 0)
        plain = runs.plain(size)
        cache.append(plain.wall / gen.wall)
        disk.append(plain.disk / gen.disk)
        plains.append(plain)
        print(
            f"  {n:,} images ({size / 1e9:.2f} GB): generator {gen.wall:.2f} s "
            f"({size / gen.wall / 1e6:,.0f} MB/s, {gen.cpu:.2f} CPU-s, peak RSS {gen.rss:.0f} "
            f"MB), on disk at {gen.disk:.2f} s; plain write {plain.wall:.2f} s "
            f"({size / plain.wall / 1e6:,.0f} MB/s, {plain.cpu:.2f} CPU-s), on disk at "
            f"{plain.disk:.2f} s: ratio {cache[-1]:.2f} to the page cache, {disk[-1]:.2f} to "
            f"the disk  [run {i + 1}, {_load()}]"
        )
    print(
        f"big set: generator speed / plain write speed = {statistics.median(cache):.2f} to "
        f"the page cache, {statistics.median(disk):.2f} to the disk (medians of {repeat}; "
        "target >= 0.80)"
    )
    return (
        size,
        statistics.median(p.wall for p in plains),
        statistics.median(p.cpu for p in plains),
    )


def seconds_per_gb(fn: Callable[[bytes], object]) -> float:
    """Best CPU seconds per GB of ``fn`` over a 256 MB buffer of random bytes, of three."""
    data = os.urandom(256 << 20)
    best = float("inf")
    for _ in range(3):
        cpu = time.process_time()
        fn(data)
        best = min(best, time.process_time() - cpu)
    return best / (len(data) / 1e9)


def breakdown(n: int, size: int, plain_wall: float, plain_cpu: float, cpu_rate: float) -> None:
    """The CPU seconds the big set's bytes need, and the best ratios they allow."""
    cores = len(os.sched_getaffinity(0))
    gb = size / 1e9
    parts = {
        "compose": n / cpu_rate,
        "CRC-32 (zip)": gb * seconds_per_gb(zlib.crc32),
        "sha256 (metadata)": gb * seconds_per_gb(lambda d: hashlib.sha256(d).digest()),
        "write (kernel copy, as the plain write)": plain_cpu,
    }
    print(f"where the big set's CPU goes (CPU-s for its {gb:.2f} GB):")
    for name, cpu in parts.items():
        print(f"  {name}: {cpu:.2f}")
    total = sum(parts.values())
    any_design = total / cores
    this_design = (total - parts["sha256 (metadata)"]) / cores + parts["sha256 (metadata)"]
    print(
        f"  {total:.2f} CPU-s on {cores} cores: no design is faster than {any_design:.2f} s "
        f"(ratio {plain_wall / any_design:.2f}); hashing the finished .npz, not faster than "
        f"{this_design:.2f} s (ratio {plain_wall / this_design:.2f}); plain write "
        f"{plain_wall:.2f} s"
    )


def course_set(runs: Runs, repeat: int) -> None:
    runs.generator(5000, 1000)  # warms the pool cache and the compiled modules
    for label, env in (("pool cache warm", {}), ("pool cache off", {"M2NIST_POOL_CACHE": "0"})):
        gens = [runs.generator(5000, 1000, **env) for _ in range(repeat)]
        size = gens[0][1]
        plains = [runs.plain(size) for _ in range(repeat)]
        gen_s = statistics.median(g.wall for g, _ in gens)
        gen_cpu = statistics.median(g.cpu for g, _ in gens)
        plain_s = statistics.median(p.wall for p in plains)
        plain_cpu = statistics.median(p.cpu for p in plains)
        print(
            f"course set 5,000 + 1,000, {label}: {gen_s:.3f} s median (best "
            f"{min(g.wall for g, _ in gens):.3f} s, {gen_cpu:.2f} CPU-s; target <= 0.4 s); "
            f"plain process writing its {size / 1e6:.0f} MB {plain_s:.3f} s ({plain_cpu:.2f} "
            f"CPU-s): ratio {plain_s / gen_s:.2f}  [{_load()}]"
        )


def compose_rate(source: str) -> tuple[float, float]:
    """Best wall-clock and CPU-time images/s of generate(COMPOSE_N) over three runs."""
    m2nist.generate(10, source=source)  # load and index the digits once
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
    parser.add_argument("--format", default="npz", help="m2nist-gen --format")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: tmp)")
    args = parser.parse_args()
    mnist_dir = os.environ.get("M2NIST_MNIST_DIR")
    source = mnist_dir or "sample"
    source_args = ["--mnist-dir", mnist_dir] if mnist_dir else ["--sample"]
    print(
        f"machine: {cpu_name()} ({os.uname().machine}), {os.cpu_count()} CPUs, "
        f"{len(os.sched_getaffinity(0))} available; m2nist-gen worker threads: "
        f"{default_workers()}; source: {source}; format {args.format}"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="m2nist-bench-", dir=args.dir) as tmp:
        runs = Runs(Path(tmp), source_args, args.format)
        course_set(runs, args.repeat)
        size, plain_wall, plain_cpu = big_set(runs, args.n, args.repeat)
    wall, cpu = compose_rate(source)
    print(
        f"composition: {wall:,.0f} img/s wall, {cpu:,.0f} img/s per CPU-second "
        f"(generate({COMPOSE_N:,}) in memory, {default_workers()} threads)"
    )
    breakdown(args.n, size, plain_wall, plain_cpu, cpu)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
