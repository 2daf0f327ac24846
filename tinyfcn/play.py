"""``tinyfcn-play``: draw digits in a web page and watch the tiny FCNs segment them, live.

A local web server (the standard library's ``http.server``: no framework) serves one page,
``tinyfcn/play_static/`` (no CDN, no web font: nothing leaves the machine), and the JSON API
that page calls (``docs/play.md``): ``POST /api/segment`` (each shipped net's label map and
the digits it found, and the converted classifier's coarse scores: the paper's Fig. 2),
``GET /api/sample`` (a real M2NIST test image, scored) and ``/api/train`` (one run of
:func:`tinyfcn.run` at a time, in a background thread, its net in memory only: the shipped
weights are never touched).

A request the server cannot answer gets a 4xx status and ``{"error": "<one line>"}``. A
request whose ``Host`` is not an address of this server (a DNS-rebinding page) or whose
``Origin`` is another site is refused, and only the three page files are served: no path is
ever looked up on disk.
"""

from __future__ import annotations

import contextlib
import copy
import io
import ipaddress
import json
import os
import random
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, urlsplit

import numpy as np
import torch
from torch import nn

import m2nist
from fcnbase import CliError, Parser, run_cli, torch_threads
from fcnbase.cli import RUNTIME_ERRORS, int_arg, one_line
from m2nist.mnist import cache_dir
from m2nist.viz import label_palette
from tinyfcn.bundled import pretrained
from tinyfcn.config import TrainConfig
from tinyfcn.data import BACKGROUND, CLASS_NAMES, NUM_CLASSES
from tinyfcn.geometry import coord_map
from tinyfcn.metrics import ConfusionMatrix
from tinyfcn.model import VARIANTS
from tinyfcn.train import run

PROG = "tinyfcn-play"
SHOWN = ("fcn4s", "fcn2s", "fcn1s")  # the paper's FCN-32s, -16s and -8s, side by side
SIZE = (64, 84)  # M2NIST's canvas, rows x columns
MIN_PIXELS = 20  # a digit counts as found when its class covers at least this many pixels
MAX_BODY = 256 * 1024  # a 64x84 image is 30 kB as JSON at most
LINGER = 2.0  # seconds a closing connection drops what its client still sends
SAMPLES = 200  # M2NIST test images composed at start, for GET /api/sample
EVAL_IMAGES, EVAL_EVERY = 200, 5.0  # a training run's test split and pace: a live curve
BUDGET = (5, 900)  # seconds a training run may be given
PAGE = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/play.js": ("play.js", "text/javascript; charset=utf-8"),
    "/play.css": ("play.css", "text/css; charset=utf-8"),
}
HEADERS = {  # the page may load only its own files and talk only to this server
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class RequestError(ValueError):
    """A request this server will not answer: its HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_image(body: bytes, content_type: str) -> np.ndarray:
    """The uint8 (64, 84) image in a request body: JSON rows of 0-255 ints, or a PNG."""
    if content_type == "image/png":
        from PIL import Image

        try:  # PIL reads the size first: a huge one is refused before any decoding
            png = Image.open(io.BytesIO(body), formats=["PNG"])
            shape = (png.height, png.width, png.mode)
            image = np.asarray(png) if shape == (*SIZE, "L") else None
        except (OSError, SyntaxError, ValueError) as exc:  # PIL's "not a (whole) PNG"
            raise RequestError(400, f"not a readable PNG: {one_line(exc)}") from None
        if image is None:
            raise RequestError(400, f"expected an 84x64 grayscale PNG, got {shape}")
        return image
    if content_type != "application/json":
        raise RequestError(415, f"send application/json or image/png, not {content_type}")
    try:
        image = np.asarray(json.loads(body))
    except (ValueError, RecursionError):  # not JSON, or rows of different lengths
        image = np.asarray(None)
    if image.dtype.kind not in "iu" or image.shape != SIZE:
        raise RequestError(400, f"expected {SIZE[0]} rows of {SIZE[1]} integers 0-255")
    if image.min() < 0 or image.max() > 255:
        raise RequestError(400, f"pixel values must be 0-255, got {image.min()}..{image.max()}")
    return image.astype(np.uint8)


class Playground:
    """What the server's requests share: the nets, the sample images, one training run."""

    def __init__(self, source: str | os.PathLike) -> None:
        self.nets: dict[str, nn.Module] = {v: pretrained(v) for v in SHOWN}
        net = self.nets["fcn4s"]  # its trunk: the classifier, converted (and fine-tuned)
        self.trunk = [net.conv1, net.pool1, net.conv2, net.pool2, net.fc, net.score_fr]
        self.where = coord_map(self.trunk)  # coarse cell i sits at stride * i + offset
        self.source = source
        self.samples = m2nist.generate(SAMPLES, split="test", seed=0, source=source)
        self.lock = threading.Lock()  # guards the three below
        self.training: dict[str, object] = {"state": "idle", "curve": []}
        self.trained: nn.Module | None = None  # the training run's latest net, a copy
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()

    @torch.no_grad()
    def segment(self, image: np.ndarray, truth: np.ndarray | None = None) -> dict[str, object]:
        """Each net's label map and the digits it found (scored when ``truth`` is given),
        and the converted classifier's class probabilities on its coarse grid."""
        x = torch.tensor(image, dtype=torch.float32).div(255)[None, None]  # a copy, as M2NIST
        with self.lock:
            trained = self.trained
        nets = self.nets if trained is None else {**self.nets, "trained": trained}
        results = {}
        for name, net in nets.items():
            labels = net(x).argmax(1)[0]
            counts = torch.bincount(labels.flatten(), minlength=NUM_CLASSES)
            found = [d for d in range(BACKGROUND) if counts[d] >= MIN_PIXELS]
            results[name] = {"labels": labels.tolist(), "digits": found}
            if truth is not None:
                matrix = ConfusionMatrix(NUM_CLASSES)
                matrix.update(labels, torch.tensor(truth))
                scores = matrix.compute()
                results[name] |= {k: scores[k] for k in ("pixel_accuracy", "mean_iou")}
        for layer in self.trunk:
            x = layer(x)
        heat = {"stride": float(self.where.stride), "offset": float(self.where.offset)}
        heat["scores"] = (x[0].softmax(0) * 255).round().int().tolist()  # (11, 16, 21)
        return {"results": results, "heatmap": heat}

    def sample(self, index: int) -> dict[str, object]:
        image, labels = self.samples.images[index], self.samples.labels[index]
        answer = {"index": index, "image": image.tolist(), "labels": labels.tolist()}
        return answer | self.segment(image, labels)

    def start_training(self, variant: object, seconds: object) -> None:
        """Train ``variant`` from scratch for ``seconds`` in a background thread; one at a time."""
        low, high = BUDGET
        if not isinstance(seconds, int | float) or not low <= seconds <= high:
            raise RequestError(400, f"seconds must be a number {low}..{high}, got {seconds!r}")
        if variant not in VARIANTS:
            raise RequestError(400, f"unknown variant {variant!r}; choose one of {VARIANTS}")
        config = TrainConfig(
            variant=variant,
            seconds=seconds,
            source=self.source,
            test_images=EVAL_IMAGES,
            eval_every=EVAL_EVERY,
            threads=None,  # the server's thread count, set by main
        )
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                raise RequestError(409, "a training run is going; stop it before starting one")
            self.stop.clear()
            self.training = {"state": "running", "variant": variant, "seconds": seconds}
            self.training |= {"curve": [], "message": "training the classifier, then the FCN"}
            self.thread = threading.Thread(target=self._train, args=(config,), daemon=True)
            self.thread.start()

    def _keep(self, model: nn.Module, history: list[dict[str, object]]) -> None:
        """Publish a copy of the net being trained and its curve so far."""
        points = [{k: p[k] for k in ("seconds", "step", "mean_iou")} for p in history]
        message = f"step {points[-1]['step']}: mIoU {points[-1]['mean_iou']:.4f}"
        with self.lock:
            self.trained = copy.deepcopy(model).cpu().eval()
            self.training |= {"curve": points, "message": message}

    def _train(self, config: TrainConfig) -> None:
        def callback(model: nn.Module, step: int, history: list[dict[str, object]]) -> None:
            if self.stop.is_set():
                raise KeyboardInterrupt  # the loop's Ctrl-C path: it stops between two steps
            if len(history) > len(self.training["curve"]):  # a new point of the curve
                self._keep(model, history)

        state, message = "failed", "stopped by a bug: see the server's output"
        try:
            result = run(config, progress=False, callback=callback)
            self._keep(result.model, result.history)
            state, message = "done", str(self.training["message"])
        except KeyboardInterrupt:
            state, message = "stopped", str(self.training["message"])
        except RUNTIME_ERRORS as exc:
            message = one_line(exc)
        finally:
            with self.lock:
                self.training |= {"state": state, "message": message}


class Server(ThreadingHTTPServer):
    """One thread per request; a client that hangs up mid-answer is not an error."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], play: Playground) -> None:
        self.files = {  # read first: a broken install is not a port in use
            path: (resources.files("tinyfcn").joinpath("play_static", name).read_bytes(), kind)
            for path, (name, kind) in PAGE.items()
        }
        self.play, self.name = play, address[0]
        super().__init__(address, Handler)

    def shutdown_request(self, request: socket.socket) -> None:
        """Close as HTTP asks of a server that answers before it has read the request (RFC
        9112, 9.6): stop sending, then drop what the client still sends, for a while. A
        socket closed with unread bytes is answered by a reset, and a client still sending
        its body (one over MAX_BODY) would lose the refusal it was sent."""
        deadline = time.monotonic() + LINGER
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                request.settimeout(left)
                if not request.recv(1 << 16):
                    break
        request.close()

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """The routes: the page's three files and the API; every refusal is one line of JSON."""

    server: Server
    protocol_version = "HTTP/1.1"  # keep-alive: the page's requests reuse one connection
    disable_nagle_algorithm = True  # headers and body leave at once, not 40 ms apart

    def do_GET(self) -> None:
        start = time.perf_counter()
        try:
            self._check_sender()
            body, kind = self._route(urlsplit(self.path))
        except RequestError as exc:
            return self.send_error(exc.status, str(exc))
        if kind == "application/json":
            body = json.dumps(body, separators=(",", ":")).encode()
        timing = f"app;dur={(time.perf_counter() - start) * 1000:.1f}"
        self._send(HTTPStatus.OK, body, kind, {"Server-Timing": timing})

    do_POST = do_GET  # one router for both: a route names its method

    def _route(self, url: SplitResult) -> tuple[object, str]:
        play, route = self.server.play, (self.command, url.path)
        if self.command == "GET" and url.path in self.server.files:
            return self.server.files[url.path]
        if route == ("GET", "/api/info"):
            rgb = (label_palette()[:, :3] * 255).round().astype(int)
            colours = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb]
            info = {"variants": SHOWN, "trainable": VARIANTS, "classes": CLASS_NAMES}
            return info | {"colours": colours, "size": SIZE, "budget": BUDGET}, "application/json"
        if route == ("GET", "/api/sample"):
            index = parse_qs(url.query).get("index", [str(random.randrange(SAMPLES))])[0]
            if not index.isdigit() or int(index) >= SAMPLES:
                raise RequestError(400, f"index must be 0..{SAMPLES - 1}, got {index!r}")
            return play.sample(int(index)), "application/json"
        if route == ("GET", "/api/train"):
            with play.lock:
                return dict(play.training), "application/json"
        if route == ("POST", "/api/segment"):
            return play.segment(read_image(*self._body())), "application/json"
        if route == ("POST", "/api/train"):
            request = self._json()
            play.start_training(request.get("variant", "fcn1s"), request.get("seconds"))
            return {"started": True}, "application/json"
        if route == ("POST", "/api/train/stop"):
            self._json()
            play.stop.set()
            return {"stopping": True}, "application/json"
        raise RequestError(404, f"nothing at {self.command} {url.path}")

    def _check_sender(self) -> None:
        """Refuse a ``Host`` that is not this server (DNS rebinding: a name that an attacker's
        DNS points at 127.0.0.1) and an ``Origin`` of another site (a page posting here)."""
        host = self.headers.get("Host", "")
        try:
            parts = urlsplit(f"//{host}")
            if parts.hostname not in ("localhost", self.server.name):
                ipaddress.ip_address(parts.hostname)  # a DNS name raises ValueError
            ours = parts.port == self.server.server_port
        except ValueError:
            ours = False
        if not ours:
            raise RequestError(403, f"Host {host!r} is not this server's address")
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != host:
            raise RequestError(403, f"requests from {origin!r} are not accepted")

    def _body(self) -> tuple[bytes, str]:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            raise RequestError(411, "send the body with a Content-Length")
        if int(length) > MAX_BODY:
            raise RequestError(413, f"a body of {length} bytes is over the {MAX_BODY} limit")
        return self.rfile.read(int(length)), self.headers.get_content_type()

    def _json(self) -> dict[str, object]:
        body, kind = self._body()
        if kind != "application/json":  # also what keeps other sites' plain forms out
            raise RequestError(415, f"send application/json, not {kind}")
        try:
            request = json.loads(body or b"{}")
        except (ValueError, RecursionError):
            request = None
        if not isinstance(request, dict):
            raise RequestError(400, "expected a JSON object")
        return request

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every refusal, the stdlib's own (a malformed request line) included: JSON, one line."""
        self.close_connection = True  # an unread body must not be taken for the next request
        body = json.dumps({"error": message or HTTPStatus(code).phrase}).encode()
        self._send(code, body, "application/json", {"Connection": "close"})

    def _send(self, code: int, body: bytes, kind: str, extra: dict[str, str]) -> None:
        self.send_response(code)
        for name, value in {**HEADERS, **extra, "Content-Type": kind}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a request log would bury the one line that says where the page is."""


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__.split("\n")[0].split(": ", 1)[1])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int_arg(0, 65535), default=0, help="0: any free port")
    p.add_argument("--no-browser", action="store_true", help="only print the page's address")
    p.add_argument(
        "--mnist-dir",
        type=Path,
        help="MNIST IDX folder for the sample images and training (default: $M2NIST_MNIST_DIR, "
        "else torchvision's download when there is one, else the bundled real-MNIST sample)",
    )
    p.add_argument("--threads", type=int_arg(1, 1024), default=TrainConfig().threads)
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    cached = cache_dir() / "MNIST" / "raw"  # never a download: the page works offline
    source = args.mnist_dir or os.environ.get("M2NIST_MNIST_DIR")
    with torch_threads(args.threads):
        play = Playground(source or (cached if cached.is_dir() else "sample"))
        try:
            server = Server((args.host, args.port), play)
        except OSError as exc:  # a port in use, an address not of this machine
            raise CliError(f"cannot listen on {args.host}:{args.port}: {one_line(exc)}") from None
        address, port = server.server_address[:2]
        if not ipaddress.ip_address(address).is_loopback:
            warning = f"listening on {address}: other machines can reach the playground"
            print(f"{PROG}: warning: {warning} and use this computer's CPU", file=sys.stderr)
        url = f"http://{'127.0.0.1' if address == '0.0.0.0' else address}:{port}/"
        print(f"playground at {url} (Ctrl-C stops it)", flush=True)
        if not args.no_browser:
            webbrowser.open(url)
        with server:
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                raise KeyboardInterrupt("server stopped") from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1 runtime error, 2 usage error, 130 Ctrl-C)."""
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
