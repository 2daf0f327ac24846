"""Benchmark: how fast the playground (``tinyfcn-play``) answers.

    python benchmarks/bench_play.py                          # --repeat 50 --strokes 10
    python benchmarks/bench_play.py --screenshot docs/img/play.png

Two figures, each the median of its runs, printed with the machine, its load and the
threads (the issue's targets on the 2-core CPU: 30 ms and 150 ms):

* **server**: one ``POST /api/segment`` of a real M2NIST test image through all three nets,
  as the server's own ``Server-Timing`` header says (reading the image, three nets, the
  heatmap, the JSON) and as the round trip a client on this machine sees;
* **stroke to result**: in headless chromium, from the last change a stroke makes to the
  drawing to the page showing that drawing's results (the page's ``data-latency``).

The browser is Debian's ``chromium`` with its ``chromedriver`` (``apt-get install chromium
chromium-driver``), driven by selenium, offline: tests/tinyfcn/test_play.py drives the page
through :func:`chromium` and :func:`draw` too. ``--screenshot`` saves the page with a
drawing and its three segmentations (the README's picture).
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from fcnbase import CliError, Parser, available_cores, run_cli, torch_threads
from fcnbase.cli import int_arg
from fcnbase.device import cpu_name
from tinyfcn.config import TrainConfig
from tinyfcn.play import Playground, Server

#: A '1' and a '7' as a person draws them: strokes of (x, y) points on the 84x64 canvas,
#: each digit 20 rows tall like the training digits.
DIGITS_17 = [[(20, 22), (20, 42)], [(45, 23), (58, 23), (49, 42)]]


def missing() -> str | None:
    """Why the browser cannot run here (None: it can)."""
    absent = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if absent:
        return f"{' and '.join(absent)} not installed (apt-get install chromium chromium-driver)"
    return None


@contextmanager
def serving(play: Playground) -> Iterator[str]:
    """A playground server on a free loopback port, in a thread; yields its address."""
    server = Server(("127.0.0.1", 0), play)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium(width: int = 1400, height: int = 760) -> Iterator[object]:
    """Headless Debian chromium under selenium, with a fresh profile and nothing that
    reaches the network by itself (no sync, no updates, no QUIC)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    with tempfile.TemporaryDirectory() as profile:
        for flag in (
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--window-size={width},{height}",
        ):  # fmt: skip
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
        try:
            yield driver
        finally:
            driver.quit()


def draw(driver: object, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw ``strokes`` on ``#draw`` with the mouse, each segment cut into 8 moves, once the
    page is ready (it has shown its first results)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    wait_for(driver, "return document.querySelector('[data-variant=fcn1s]').dataset.digits != null")
    canvas = driver.find_element(By.ID, "draw")
    w, h = canvas.size["width"], canvas.size["height"]

    def to(chain: ActionChains, x: float, y: float) -> ActionChains:  # from the centre
        return chain.move_to_element_with_offset(canvas, x * w / 84 - w / 2, y * h / 64 - h / 2)

    for points in strokes:
        chain = to(ActionChains(driver, duration=5), *points[0]).click_and_hold()
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            for t in range(1, 9):
                chain = to(chain, x0 + (x1 - x0) * t / 8, y0 + (y1 - y0) * t / 8)
        chain.release().perform()


def wait_for(driver: object, script: str, seconds: float = 30) -> object:
    """The first truthy value of a JavaScript expression (``return ...``) within ``seconds``."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.01).until(
        lambda d: d.execute_script(script)
    )


def _server_ms(url: str, body: bytes, repeat: int) -> tuple[list[float], list[float]]:
    """Server-Timing and round-trip milliseconds of ``repeat`` segment requests (after 3)."""
    host, port = url.split("/")[2].split(":")
    connection = http.client.HTTPConnection(host, int(port))
    own, trip = [], []
    for i in range(repeat + 3):
        start = time.perf_counter()
        connection.request("POST", "/api/segment", body, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise CliError(f"/api/segment answered {answer.status}")
        if i >= 3:  # the first requests pay for warm-up
            trip.append((time.perf_counter() - start) * 1000)
            own.append(float(answer.getheader("Server-Timing").split("dur=")[1]))
    return own, trip


def _stroke_ms(driver: object, url: str, strokes: int) -> list[float]:
    """Milliseconds from the last change of the drawing to its results, ``strokes`` times."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait_for(driver, "return document.body.dataset.latency")
    times = []
    for _ in range(strokes + 1):
        driver.find_element(By.ID, "clear").click()
        wait_for(driver, "return document.body.dataset.latency")
        driver.execute_script("delete document.body.dataset.latency")
        draw(driver, DIGITS_17)
        times.append(float(wait_for(driver, "return document.body.dataset.latency")))
    return times[1:]  # the first pays for the page's warm-up


def _main(argv: Sequence[str] | None) -> int:
    p = Parser(prog="bench_play", description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int_arg(1, 10_000), default=50, help="segment requests")
    p.add_argument("--strokes", type=int_arg(0, 1000), default=10, help="drawings in chromium")
    p.add_argument("--threads", type=int_arg(1, 1024), default=TrainConfig().threads)
    p.add_argument("--screenshot", type=Path, help="save the page with a drawing here (PNG)")
    args = p.parse_args(argv)
    if (args.strokes or args.screenshot) and missing():
        raise CliError(missing())
    load = os.getloadavg()[0]
    with torch_threads(args.threads) as threads:
        play = Playground("sample")
        body = json.dumps(play.samples.images[0].tolist()).encode()
        print(
            f"{cpu_name()}: {available_cores()} cores, torch {torch.__version__} on {threads} "
            f"thread(s), load before {load:.2f}"
        )
        with serving(play) as url:
            own, trip = _server_ms(url, body, args.repeat)
            print(
                f"server, POST /api/segment with fcn4s, fcn2s and fcn1s (median of {args.repeat}):"
                f" {statistics.median(own):.1f} ms in the server, "
                f"{statistics.median(trip):.1f} ms round trip (target 30 ms)"
            )
            if args.strokes or args.screenshot:
                with chromium() as driver:
                    times = _stroke_ms(driver, url, args.strokes)
                    version = driver.capabilities["browserVersion"]
                    if args.strokes:
                        print(
                            f"stroke to result, headless chromium {version} (median of "
                            f"{args.strokes}): {statistics.median(times):.1f} ms (target 150 ms)"
                        )
                    if args.screenshot:
                        driver.save_screenshot(str(args.screenshot))
                        print(f"screenshot {args.screenshot}")
    print(f"load after {os.getloadavg()[0]:.2f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 done, 1 runtime error, 2 usage error, 130 interrupted."""
    return run_cli("bench_play", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
