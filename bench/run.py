"""Serving benchmark: our server against the naive baseline and the framework floor, under
wrk on loopback.

    python -m bench.run            # or: make bench

Starts each server for real (the committed model) on 127.0.0.1, drives POST /api/predict
with a 280x280 canvas PNG of a real MNIST digit using wrk at several concurrencies, times
each route alone (predict, predict explained, a correction, reading a 4-digit number),
measures the start-up time, the memory of each server process after 300 predictions, and the
per-image cost of preprocessing and of the forward pass alone, and writes bench/results.md,
the table the README quotes. Prints whether the targets hold and exits 1 if one does not.
"""

import io
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from app.paths import DEFAULT_MODEL_PATH, PROJECT_ROOT
from app.serving.model_file import load_classifier
from app.serving.preprocessing import Limits, preprocess
from app.serving.segmentation import read_digits
from app.training.data import load_idx_directory
from app.training.drawings import DrawingStyle, render_drawing
from app.training.numbers import NumberStyle, write_number
from bench.processes import cpu_seconds, resident_mb, server_processes

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results.md"
MNIST_DIR = Path(os.environ.get("MNIST_DIR", PROJECT_ROOT.parent / "shared" / "data" / "mnist"))
DURATION_SECONDS = int(os.environ.get("BENCH_SECONDS", "6"))
WARM_UP_SECONDS = 2
ROUTE_ROUNDS = 3  # see request_times
CONCURRENCIES = (1, 8, 64)
TARGET_SPEED_UP = 20.0
TARGET_SCALING = 1.5
TARGET_MEMORY_MB = 150.0
MEMORY_PREDICTIONS = 300
NUMBER_PAD = (1120, 400)  # the page's number mode (static/app.js)
CROP_MARGIN = 4  # pixels the page keeps around the strokes it sends (static/app.js)
# The page sends a number's strokes at the size the server reads them (static/app.js).
NUMBER_ROW_HEIGHT = 160
NUMBER_DIGIT_HEIGHT = 80
NUMBER_DIGIT_PIXELS = 200  # the bench's number, as written on the number pad
LATENCY_METRIC = "digit_canvas_http_request_duration_seconds"
TARGET_READ_MS = 5.0
TARGET_EXPLAIN_MS = 1.0
TARGET_FEEDBACK_MS = 5.0
ROUTE_TITLES = {
    "predict": "`POST /api/predict`",
    "predict_explained": "`POST /api/predict?explain=true`",
    "feedback": "`POST /api/feedback` (a correction)",
    "read": "`POST /api/read` (4-digit number, as the page sends it)",
    "read_full": "`POST /api/read` (the same strokes' part, at the pad's size)",
    "read_pad": "`POST /api/read` (the same, whole pad, multipart)",
}


@dataclass(frozen=True)
class StartedServer:
    url: str
    pid: int
    start_seconds: float  # from the command to the first answer


@dataclass(frozen=True)
class Upload:
    """A POST that wrk repeats."""

    path: str
    body: bytes
    content_type: str

    @classmethod
    def multipart(cls, path: str, png: bytes, **fields: str) -> "Upload":
        body, boundary = multipart_body(png, **fields)
        return cls(path, body, f"multipart/form-data; boundary={boundary}")


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def canvas_png() -> tuple[bytes, int]:
    """A real MNIST test digit drawn on a 280x280 transparent canvas, and its label."""
    data = load_idx_directory(MNIST_DIR)
    return render_drawing(data.x_test[0], DrawingStyle(background="transparent")), int(
        data.y_test[0]
    )


def number_canvas_png() -> tuple[bytes, str]:
    """The first "2", "0", "2", "6" of the MNIST test set written with a pen, digits
    NUMBER_DIGIT_PIXELS high, on the page's 1120x400 number pad (transparent); and the
    number."""
    data = load_idx_directory(MNIST_DIR)
    number = "2026"
    digits = np.stack([data.x_test[np.flatnonzero(data.y_test == int(d))[0]] for d in number])
    style = NumberStyle(
        digit_height=NUMBER_DIGIT_PIXELS, gaps=(0.4,) * 3, sizes=(1.0,) * 4,
        baselines=(0.0,) * 4, slant=0.0, pen_width=2.5, ink="black", background="transparent",
    )  # fmt: skip
    written = Image.open(io.BytesIO(write_number(digits, style).image))
    pad = Image.new("RGBA", NUMBER_PAD, (0, 0, 0, 0))
    pad.paste(written, ((pad.width - written.width) // 2, (pad.height - written.height) // 2))
    encoded = io.BytesIO()
    pad.save(encoded, "PNG", compress_level=1)  # fast, as browsers encode canvases
    return encoded.getvalue(), number


def strokes_part(png: bytes) -> Image.Image:
    """The part of a transparent canvas its strokes cover, as the page cuts it."""
    image = Image.open(io.BytesIO(png))
    left, top, right, bottom = image.getbbox()
    return image.crop((max(0, left - CROP_MARGIN), max(0, top - CROP_MARGIN),
                       min(image.width, right + CROP_MARGIN),
                       min(image.height, bottom + CROP_MARGIN)))  # fmt: skip


def as_the_page_sends(png: bytes, scale: int = 1) -> bytes:
    """The strokes' part of a canvas, `scale` times smaller, encoded as a browser does."""
    encoded = io.BytesIO()
    strokes_part(png).reduce(scale).save(encoded, "PNG", compress_level=1)
    return encoded.getvalue()


def number_scale(png: bytes) -> int:
    """How many times smaller the page sends the bench's number than it is on the pad: the
    whole factor that brings its row under NUMBER_ROW_HEIGHT, its digits staying
    NUMBER_DIGIT_HEIGHT high (static/app.js, sentScale)."""
    rows = -(-strokes_part(png).height // NUMBER_ROW_HEIGHT)
    return max(1, min(rows, NUMBER_DIGIT_PIXELS // NUMBER_DIGIT_HEIGHT))


def multipart_body(png: bytes, **fields: str) -> tuple[bytes, str]:
    """A multipart/form-data body: the image as `file`, then any form fields."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="digit.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + png
        + b"\r\n",
        *(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
            for name, value in fields.items()
        ),
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(
    command: list[str], env: dict[str, str], probe: Callable[[str], object]
) -> Iterator[StartedServer]:
    """Start a server, time it until `probe(url)` first succeeds, yield it, stop it."""
    port = free_port()
    environment = {**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(port)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in command],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                probe(url)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {' '.join(command)}") from None
                time.sleep(0.02)
        start_seconds = time.perf_counter() - started
        wait_until_idle(process.pid)
        yield StartedServer(url, process.pid, start_seconds)
    finally:
        process.terminate()
        process.wait(timeout=30)


def worker_memory_mb(pid: int) -> list[float]:
    """Resident memory of each process that serves: the server itself, or its workers."""
    return [resident_mb(worker) for worker in server_processes(pid)]


def wait_until_idle(pid: int, timeout: float = 120.0) -> None:
    """Until every worker has loaded the model: the first to answer is not the last ready,
    and one still starting would take a core from the measurement."""
    deadline = time.monotonic() + timeout
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - before < 0.1:
            return
        before = now


def post_once(url: str, upload: Upload) -> dict:
    """One request, as a client sends it."""
    request = urllib.request.Request(
        f"{url}{upload.path}", data=upload.body, headers={"Content-Type": upload.content_type}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def milliseconds(text: str) -> float:
    if text == "inf":
        return float("inf")
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, upload: Upload, concurrency: int, seconds: int) -> LoadResult:
    """wrk with one thread (the other core is the server's), latency percentiles on."""
    command = [
        "wrk",
        "--threads", "1",
        "--connections", str(concurrency),
        "--duration", f"{seconds}s",
        "--timeout", "10s",
        "--latency",
        "--script", str(BENCH_DIR / "post.lua"),
        f"{url}{upload.path}",
    ]  # fmt: skip
    with tempfile.NamedTemporaryFile(suffix=".body") as body:
        body.write(upload.body)
        body.flush()
        environment = {"BENCH_BODY": body.name, "BENCH_CONTENT_TYPE": upload.content_type}
        output = subprocess.run(
            command, capture_output=True, text=True, check=True, env={**os.environ, **environment}
        ).stdout
    return parse_wrk_output(output)


def parse_wrk_output(output: str) -> LoadResult:
    """Requests/s, p50, p99 and errors (socket errors and non-2xx answers) from wrk's report."""
    # wrk ends some percentile lines with a space (those in seconds).
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.MULTILINE))
    if not percentiles:  # not one answer in time: a baseline that slow has no percentiles
        percentiles = {"50": "inf", "99": "inf"}
    errors = sum(
        int(count)
        for count in re.findall(r"(?:connect|read|write|timeout) (\d+)", output)
        + re.findall(r"Non-2xx or 3xx responses: (\d+)", output)
    )
    return LoadResult(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=milliseconds(percentiles["50"]),
        p99_ms=milliseconds(percentiles["99"]),
        errors=errors,
    )


def load_test(url: str, concurrencies: tuple[int, ...], upload: Upload) -> dict[int, LoadResult]:
    run_wrk(url, upload, 8, WARM_UP_SECONDS)
    return {c: run_wrk(url, upload, c, DURATION_SECONDS) for c in concurrencies}


@dataclass(frozen=True)
class RouteTime:
    """A request repeated alone: as wrk saw it, and the server's own time for it."""

    load: LoadResult
    server_ms: float  # mean, from the server's latency histogram (GET /metrics)


def server_seconds(url: str, path: str) -> tuple[float, float]:
    """(seconds, requests) the server has spent on POSTs to `path` so far: its own latency
    histogram, from a request's headers to the end of its response."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    route = path.split("?", maxsplit=1)[0]
    labels = re.escape(f'{{method="POST",route="{route}"}}')
    figures = [
        float(re.search(rf"^{name}{labels} (\S+)$", metrics, re.MULTILINE).group(1))
        for name in (f"{LATENCY_METRIC}_sum", f"{LATENCY_METRIC}_count")
    ]
    return figures[0], figures[1]


def taking_turns(loads: list[LoadResult]) -> LoadResult:
    """One route's rounds as one row: the mean rate and median p50 of its rounds (of equal
    length), their worst p99 and all their errors."""
    return LoadResult(
        requests_per_second=statistics.mean(load.requests_per_second for load in loads),
        p50_ms=statistics.median(load.p50_ms for load in loads),
        p99_ms=max(load.p99_ms for load in loads),
        errors=sum(load.errors for load in loads),
    )


def request_times(url: str, uploads: dict[str, Upload]) -> dict[str, RouteTime]:
    """Each request alone, one after another (concurrency 1): wrk's mean time for it is the
    server's plus loopback and wrk's own; the server's alone comes from its metrics.

    The routes take turns, ROUTE_ROUNDS rounds of a third of the time each: this machine's
    speed drifts from one second to the next, and measured one after the other, a route's
    difference from another (what explaining adds to a prediction) moved by more than the
    difference itself (0.2 to 2.3 ms in runs minutes apart)."""
    for upload in uploads.values():
        run_wrk(url, upload, 1, WARM_UP_SECONDS)
    loads: dict[str, list[LoadResult]] = {name: [] for name in uploads}
    seconds = dict.fromkeys(uploads, 0.0)
    requests = dict.fromkeys(uploads, 0.0)
    for _ in range(ROUTE_ROUNDS):
        for name, upload in uploads.items():
            seconds_before, count_before = server_seconds(url, upload.path)
            loads[name].append(run_wrk(url, upload, 1, DURATION_SECONDS // ROUTE_ROUNDS))
            seconds_after, count_after = server_seconds(url, upload.path)
            seconds[name] += seconds_after - seconds_before
            requests[name] += count_after - count_before
    return {
        name: RouteTime(taking_turns(loads[name]), seconds[name] / requests[name] * 1000)
        for name in uploads
    }


def milliseconds_each(result: LoadResult) -> float:
    """Mean time per request at concurrency 1."""
    return 1000 / result.requests_per_second


def per_image_costs(png: bytes, number_png: bytes) -> dict[str, float]:
    """Milliseconds per image: our preprocessing, our forward pass, Keras' model.predict,
    and reading a number's digits (segmentation and preprocessing of each)."""
    import keras  # noqa: PLC0415 - only here, after the servers have run

    def mean_ms(function: object, repeat: int) -> float:
        function()  # warm
        started = time.perf_counter()
        for _ in range(repeat):
            function()
        return (time.perf_counter() - started) / repeat * 1000

    model_input = preprocess(png)[np.newaxis]
    classifier = load_classifier(DEFAULT_MODEL_PATH)
    model = keras.saving.load_model(DEFAULT_MODEL_PATH)
    return {
        "preprocess": mean_ms(lambda: preprocess(png), 500),
        "forward_numpy": mean_ms(lambda: classifier.predict(model_input), 5000),
        "forward_keras_predict": mean_ms(lambda: model.predict(model_input, verbose=0), 50),
        "read_number": mean_ms(lambda: read_digits(number_png, Limits()), 200),
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        cpu = names[0] if names else cpu
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def row(name: str, concurrency: int, result: LoadResult) -> str:
    return (
        f"| {name} | {concurrency} | {result.requests_per_second:,.0f} | "
        f"{result.p50_ms:.1f} | {result.p99_ms:.1f} | {result.errors} |"
    )


def report(
    *,
    ours: dict[int, LoadResult],
    naive: dict[int, LoadResult],
    two_workers: dict[int, LoadResult],
    floor: dict[int, LoadResult],
    route_times: dict[str, RouteTime],
    memory_mb: dict[str, list[float]],
    start_seconds: dict[str, float],
    costs: dict[str, float],
    answers: dict[str, int | str],
    label: int,
    number: str,
) -> tuple[str, list[tuple[str, bool]]]:
    speed_up = ours[8].requests_per_second / naive[8].requests_per_second
    scaling = two_workers[8].requests_per_second / ours[8].requests_per_second
    floor_share = ours[8].requests_per_second / floor[8].requests_per_second
    largest_mb = max(max(sizes) for sizes in memory_mb.values())
    each = {name: route.server_ms for name, route in route_times.items()}
    explain_ms = each["predict_explained"] - each["predict"]
    targets = [
        (
            f"1 worker, concurrency 8: {speed_up:.1f}x the naive baseline (target >= "
            f"{TARGET_SPEED_UP:.0f}x)",
            speed_up >= TARGET_SPEED_UP,
        ),
        (
            f"errors: {sum(r.errors for r in (*ours.values(), *two_workers.values()))} (target 0)",
            all(r.errors == 0 for r in (*ours.values(), *two_workers.values())),
        ),
        (
            f"2 workers / 1 worker at concurrency 8: {scaling:.2f}x (target >= {TARGET_SCALING}x)",
            scaling >= TARGET_SCALING,
        ),
        (
            f"memory after {MEMORY_PREDICTIONS} predictions: at most {largest_mb:.0f} MB per "
            f"server process (target <= {TARGET_MEMORY_MB:.0f} MB)",
            largest_mb <= TARGET_MEMORY_MB,
        ),
        (
            f"POST /api/read of a 4-digit canvas PNG as the page sends it: {each['read']:.2f} "
            f"ms of server time (target < {TARGET_READ_MS:.0f} ms; its strokes at the pad's "
            f"size: {each['read_full']:.2f} ms, the whole pad, multipart: "
            f"{each['read_pad']:.2f} ms)",
            each["read"] < TARGET_READ_MS,
        ),
        (
            f"?explain=true adds {explain_ms:.2f} ms of server time per request (target < "
            f"{TARGET_EXPLAIN_MS:.0f} ms)",
            explain_ms < TARGET_EXPLAIN_MS,
        ),
        (
            f"POST /api/feedback on SQLite: {each['feedback']:.2f} ms of server time per request "
            f"(target < "
            f"{TARGET_FEEDBACK_MS:.0f} ms)",
            each["feedback"] < TARGET_FEEDBACK_MS,
        ),
        (
            f"errors of the routes alone: {sum(r.load.errors for r in route_times.values())} "
            "(target 0)",
            all(route.load.errors == 0 for route in route_times.values()),
        ),
    ]
    lines = [
        "# Serving benchmark",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench` on {machine()}.",
        f"`POST /api/predict` with a 280x280 canvas PNG of an MNIST {label} (transparent",
        f"background, multipart upload), wrk on 127.0.0.1, {DURATION_SECONDS} s per row, after a",
        f"{WARM_UP_SECONDS} s warm-up; log level warning. The framework floor is FastAPI on",
        "uvicorn receiving the same upload and returning a fixed answer (bench/floor_server.py).",
        "",
        "| Server | Concurrency | Requests/s | p50 ms | p99 ms | Errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(row("Digit Canvas, 1 worker", c, r) for c, r in ours.items()),
        *(row("Digit Canvas, 2 workers", c, r) for c, r in two_workers.items()),
        *(row("framework floor, 1 worker", c, r) for c, r in floor.items()),
        *(row("naive baseline, 1 worker", c, r) for c, r in naive.items()),
        "",
        "Each route alone, 1 worker, one request after another, the routes taking turns in",
        f"{ROUTE_ROUNDS} rounds of {DURATION_SECONDS // ROUTE_ROUNDS} s: the server's own time per "
        "request (its latency",
        "histogram, GET /metrics), and wrk's, which adds loopback and wrk's own work (p50: the",
        "rounds' median, p99: their worst); corrections in a fresh SQLite file:",
        "",
        "| Request | Server ms | Requests/s | wrk mean ms | p50 ms | p99 ms | Errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {ROUTE_TITLES[name]} | {route.server_ms:.2f} | "
            f"{route.load.requests_per_second:,.0f} | "
            f"{milliseconds_each(route.load):.2f} | {route.load.p50_ms:.2f} | "
            f"{route.load.p99_ms:.2f} | {route.load.errors} |"
            for name, route in route_times.items()
        ),
        "",
        f"- Share of the framework floor, 1 worker: {floor_share:.0%} at concurrency 8 "
        f"({ours[8].requests_per_second:,.0f} of {floor[8].requests_per_second:,.0f} requests/s); "
        "the rest is preprocessing and the network.",
        f"- Throughput, ours / naive, 1 worker: {speed_up:.0f}x at concurrency 8, "
        f"{ours[1].requests_per_second / naive[1].requests_per_second:.0f}x at 1, "
        f"{ours[64].requests_per_second / naive[64].requests_per_second:.0f}x at 64.",
        f"- Scaling, 2 workers / 1 worker: {scaling:.2f}x at concurrency 8, "
        f"{two_workers[64].requests_per_second / ours[64].requests_per_second:.2f}x at 64.",
        f"- Per image, in one process: preprocessing {costs['preprocess']:.2f} ms, forward "
        f"pass {costs['forward_numpy'] * 1000:.0f} us in NumPy against "
        f"{costs['forward_keras_predict']:.1f} ms for Keras' `model.predict` "
        f"({costs['forward_keras_predict'] / costs['forward_numpy']:.0f}x); reading the "
        f"4-digit number's digits {costs['read_number']:.2f} ms.",
        f"- Memory after {MEMORY_PREDICTIONS} predictions (resident, per server process): "
        + "; ".join(
            f"{name} " + ", ".join(f"{size:.0f} MB" for size in sizes)
            for name, sizes in memory_mb.items()
        )
        + ".",
        "- From the start command to the first answer: "
        + "; ".join(f"{name} {seconds:.2f} s" for name, seconds in start_seconds.items())
        + ".",
        f"- The answer for this drawing of a {label}: ours {answers['ours']}, naive "
        f"{answers['naive']} (it flattens the transparent canvas to black); the number "
        f"{number} read as {answers['read']} as the page sends it, {answers['read_full']} at "
        f"the pad's size.",
        "",
        "Targets:",
        "",
        *(f"- {'met' if met else 'MISSED'}: {text}" for text, met in targets),
        "",
    ]
    return "\n".join(lines), targets


def main() -> int:
    if shutil.which("wrk") is None:
        print("error: wrk not found; `make bench` installs Debian's wrk", file=sys.stderr)
        return 2
    png, label = canvas_png()
    number_png, number = number_canvas_png()
    predict = Upload.multipart("/api/predict", png)
    routes = {
        "predict": predict,
        "predict_explained": Upload.multipart("/api/predict?explain=true", png),
        "feedback": Upload.multipart("/api/feedback", png, label=str(label)),
        "read": Upload(
            "/api/read", as_the_page_sends(number_png, number_scale(number_png)), "image/png"
        ),
        "read_full": Upload("/api/read", as_the_page_sends(number_png), "image/png"),
        "read_pad": Upload.multipart("/api/read", number_png),
    }
    quiet = {"LOG_LEVEL": "warning"}
    ours_command = [sys.executable, "-m", "app.serve"]
    naive_command = [
        *(sys.executable, "-m", "uvicorn", "bench.naive_server:app"),
        *("--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"),
    ]
    floor_command = [
        *(sys.executable, "-m", "uvicorn", "bench.floor_server:app", "--loop", "asyncio"),
        *("--http", "httptools", "--host", "127.0.0.1", "--port", "{port}"),
        *("--log-level", "warning"),
    ]
    answers, memory_mb, start_seconds = {}, {}, {}

    def predicts(url: str) -> None:
        answers.setdefault(url, post_once(url, predict)["digit"])

    with tempfile.TemporaryDirectory() as data_dir:
        # Corrections go to a throwaway SQLite file, as many as the bench sends.
        ours_env = {
            **quiet,
            "DATABASE_URL": f"sqlite:///{data_dir}/corrections.db",
            "CORRECTIONS_PER_MINUTE": "1000000",
        }
        with running_server(ours_command, {**ours_env, "WORKERS": "1"}, predicts) as server:
            answers["ours"] = answers.pop(server.url)
            for name in ("read", "read_full"):
                answers[name] = post_once(server.url, routes[name])["number"]
            start_seconds["Digit Canvas"] = server.start_seconds
            for _ in range(MEMORY_PREDICTIONS):
                post_once(server.url, predict)
            memory_mb["1 worker"] = worker_memory_mb(server.pid)
            print("Digit Canvas, 1 worker ...", flush=True)
            ours = load_test(server.url, CONCURRENCIES, predict)
            print("Digit Canvas, each route alone ...", flush=True)
            route_times = request_times(server.url, routes)
        with running_server(ours_command, {**ours_env, "WORKERS": "2"}, predicts) as server:
            for _ in range(MEMORY_PREDICTIONS):
                post_once(server.url, predict)
            memory_mb["2 workers"] = worker_memory_mb(server.pid)
            print("Digit Canvas, 2 workers ...", flush=True)
            two_workers = load_test(server.url, (8, 64), predict)
    with running_server(floor_command, quiet, predicts) as server:
        print("framework floor ...", flush=True)
        floor = load_test(server.url, (8,), predict)
    with running_server(naive_command, quiet, predicts) as server:
        answers["naive"] = answers.pop(server.url)
        start_seconds["naive baseline (Keras)"] = server.start_seconds
        print("naive baseline ...", flush=True)
        naive = load_test(server.url, CONCURRENCIES, predict)
    costs = per_image_costs(png, number_png)
    text, targets = report(
        ours=ours,
        naive=naive,
        two_workers=two_workers,
        floor=floor,
        route_times=route_times,
        memory_mb=memory_mb,
        start_seconds=start_seconds,
        costs=costs,
        answers=answers,
        label=label,
        number=number,
    )
    RESULTS.write_text(text)
    print(text)
    print(f"written to {RESULTS.relative_to(PROJECT_ROOT)}")
    return 0 if all(met for _, met in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
