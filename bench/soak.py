"""Soak and hostile load: the server under attack stays responsive, bounded and correct.

    python -m bench.soak           # or: make soak (about 3 minutes; SOAK_SECONDS to change)

Starts the real server (1 worker) and measures, printing the figures and writing
bench/soak-results.md:

1. a burst of 16 concurrent worst-case images (16-bit 4096x4096 PNGs, 33 kB each, decoded
   in full): the memory of the server's whole process tree at its peak and 5 s later, and
   how long /healthz takes meanwhile (polled every 50 ms by another client);
2. a mixed load with wrk for SOAK_SECONDS: canvas drawings and photos that must all be read
   (200), and broken or hostile bodies that must all get a 4xx; the memory before and after.

Exits 1 if a target is missed: no 5xx, every valid request answered 200, /healthz under
250 ms, peak under 1 GB above idle and back within 256 MB of idle 5 s later, memory flat.
"""

import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from app.paths import PROJECT_ROOT
from app.training.data import load_idx_directory
from app.training.drawings import DrawingStyle, render_drawing
from bench.processes import tree_resident_mb
from bench.run import BENCH_DIR, MNIST_DIR, machine, running_server

RESULTS = BENCH_DIR / "soak-results.md"
SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "120"))
CONNECTIONS = 8
BURST = 16
TARGET_HEALTH_MS = 250.0
TARGET_PEAK_MB = 1024.0
TARGET_SETTLED_MB = 256.0
TARGET_GROWTH_MB = 32.0  # "flat": what a long run may add to the resident memory


def encode(image: Image.Image, image_format: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def worst_case_png() -> bytes:
    """16-bit 4096x4096: 32 MB decoded from 33 kB, all of it to be read."""
    return encode(Image.fromarray(np.zeros((4096, 4096), dtype=np.uint16)))


def post(url: str, data: bytes, content_type: str = "image/png") -> int:
    """The status of one request; 0 if no answer came (the connection failed or timed out)."""
    request = urllib.request.Request(
        f"{url}/api/predict", data=data, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def health_latencies(url: str, stop: threading.Event) -> list[float]:
    """Milliseconds each GET /healthz took, one every 50 ms until `stop`."""
    latencies = []
    while not stop.is_set():
        started = time.perf_counter()
        with urllib.request.urlopen(f"{url}/healthz", timeout=30):
            latencies.append((time.perf_counter() - started) * 1000)
        stop.wait(0.05)
    return latencies


def burst(url: str, pid: int) -> dict[str, object]:
    """16 worst-case images at once, with memory and /healthz watched meanwhile."""
    idle_mb = tree_resident_mb(pid)
    image = worst_case_png()
    stop = threading.Event()
    peak_mb = idle_mb
    with ThreadPoolExecutor(BURST + 1) as pool:
        health = pool.submit(health_latencies, url, stop)
        answers = [pool.submit(post, url, image) for _ in range(BURST)]
        try:
            while not all(answer.done() for answer in answers):
                peak_mb = max(peak_mb, tree_resident_mb(pid))
                time.sleep(0.05)
        finally:
            stop.set()
        statuses = [answer.result() for answer in answers]
        latencies = health.result()
    time.sleep(5)
    return {
        "idle_mb": idle_mb,
        "peak_mb": peak_mb,
        "settled_mb": tree_resident_mb(pid),
        "statuses": sorted(statuses),
        "health_max_ms": max(latencies),
        "health_samples": len(latencies),
    }


def request_files(directory: Path) -> Path:
    """The bodies the mixed load sends, and the list wrk reads (kind, path, type, file)."""
    data = load_idx_directory(MNIST_DIR)
    canvas = render_drawing(data.x_test[0], DrawingStyle(background="transparent"))
    photo = render_drawing(
        data.x_test[1],
        DrawingStyle(canvas_size=(1200, 900), digit_height=600, image_format="JPEG"),
    )
    rng = np.random.default_rng(0)
    jpeg = encode(Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)), "JPEG",
                  progressive=True)  # fmt: skip
    first_scan = jpeg[
        jpeg.index(b"\xff\xda") : jpeg.index(b"\xff\xda", jpeg.index(b"\xff\xda") + 2)
    ]
    bodies = {
        "canvas.png": ("valid", "image/png", canvas),
        "photo.jpg": ("valid", "image/jpeg", photo),
        "noise.bin": ("invalid", "image/png", rng.bytes(4096)),
        "blank.png": ("invalid", "image/png", encode(Image.new("RGBA", (560, 560)))),
        "truncated.png": ("invalid", "image/png", canvas[: len(canvas) // 2]),
        "text.txt": ("invalid", "text/plain", b"seven"),
        "scans.jpg": ("invalid", "image/jpeg", jpeg[:-2] + first_scan * 200 + jpeg[-2:]),
    }
    # Canvas drawings, as the page sends them, are most of the traffic.
    order = ["canvas.png"] * 4 + ["photo.jpg", "canvas.png", *list(bodies)[2:]]
    lines = []
    for name in order:
        kind, content_type, body = bodies[name]
        (directory / name).write_bytes(body)
        lines.append(f"{kind} /api/predict {content_type} {directory / name}")
    listing = directory / "requests.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def mixed_load(url: str, pid: int, listing: Path) -> dict[str, object]:
    before_mb = tree_resident_mb(pid)
    command = [
        "wrk", "--threads", "1", "--connections", str(CONNECTIONS),
        "--duration", f"{SOAK_SECONDS}s", "--timeout", "30s",
        "--script", str(BENCH_DIR / "soak.lua"), f"{url}/api/predict",
    ]  # fmt: skip
    output = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SOAK_REQUESTS": str(listing)},
    ).stdout
    counts = {}
    for part in output.split("SOAK ", 1)[1].strip().split(", "):
        *name, count = part.split()
        counts[" ".join(name)] = int(count)
    return {"before_mb": before_mb, "after_mb": tree_resident_mb(pid), "counts": counts}


def report(burst_figures: dict, load: dict) -> tuple[str, list[tuple[str, bool]]]:
    counts = load["counts"]
    statuses = {name.split()[1]: count for name, count in counts.items() if name[:6] == "status"}
    server_errors = sum(count for status, count in statuses.items() if status.startswith("5"))
    server_errors += sum(1 for status in burst_figures["statuses"] if status >= 500 or not status)
    valid, answered = counts.get("sent valid", 0), statuses.get("200", 0)
    # wrk stops with up to one request in flight per connection, sent but never answered.
    unanswered_valid = valid - answered
    growth = load["after_mb"] - load["before_mb"]
    above_idle = burst_figures["peak_mb"] - burst_figures["idle_mb"]
    settled = burst_figures["settled_mb"] - burst_figures["idle_mb"]
    targets = [
        (f"responses >= 500: {server_errors} (target 0)", server_errors == 0),
        (
            f"valid requests not answered 200: {unanswered_valid} of {valid:,} "
            f"(target 0, but for the {CONNECTIONS} at most in flight when wrk stops)",
            0 <= unanswered_valid <= CONNECTIONS,
        ),
        (f"socket errors: {counts['socket_errors']} (target 0)", counts["socket_errors"] == 0),
        (
            f"slowest /healthz during the burst: {burst_figures['health_max_ms']:.0f} ms "
            f"(target < {TARGET_HEALTH_MS:.0f} ms)",
            burst_figures["health_max_ms"] < TARGET_HEALTH_MS,
        ),
        (
            f"peak memory of the burst: {above_idle:.0f} MB above idle "
            f"(target < {TARGET_PEAK_MB:.0f} MB)",
            above_idle < TARGET_PEAK_MB,
        ),
        (
            f"5 s after the burst: {settled:.0f} MB above idle (target < {TARGET_SETTLED_MB:.0f})",
            settled < TARGET_SETTLED_MB,
        ),
        (
            f"memory over the {SOAK_SECONDS} s load: {growth:+.0f} MB "
            f"(target < +{TARGET_GROWTH_MB:.0f} MB)",
            growth < TARGET_GROWTH_MB,
        ),
    ]
    duration = SOAK_SECONDS
    lines = [
        "# Soak and hostile load",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make soak` on {machine()}; one",
        "server process (the isolated decoders and their fork server included in its memory).",
        "",
        f"- Burst of {BURST} concurrent 16-bit 4096x4096 PNGs: statuses "
        f"{', '.join(map(str, sorted(set(burst_figures['statuses']))))}; memory idle "
        f"{burst_figures['idle_mb']:.0f} MB, peak {burst_figures['peak_mb']:.0f} MB, "
        f"{burst_figures['settled_mb']:.0f} MB 5 s later; /healthz at most "
        f"{burst_figures['health_max_ms']:.0f} ms over {burst_figures['health_samples']} polls.",
        f"- Mixed load, {duration} s, {CONNECTIONS} connections: "
        f"{counts.get('sent valid', 0):,} valid requests (canvas drawings and photos), "
        f"{counts.get('sent invalid', 0):,} invalid ones (noise, blank, truncated, text, "
        f"a JPEG of 200 scans); statuses "
        + ", ".join(f"{status}: {count:,}" for status, count in sorted(statuses.items()))
        + f"; {(valid + counts.get('sent invalid', 0)) / duration:,.0f} requests/s; memory "
        f"{load['before_mb']:.0f} MB before, {load['after_mb']:.0f} MB after.",
        "",
        "Targets:",
        "",
        *(f"- {'met' if met else 'MISSED'}: {text}" for text, met in targets),
        "",
    ]
    return "\n".join(lines), targets


def main() -> int:
    if shutil.which("wrk") is None:
        print("error: wrk not found; `make soak` installs Debian's wrk", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "app.serve"]
    with tempfile.TemporaryDirectory() as directory:
        listing = request_files(Path(directory))
        canvas = (Path(directory) / "canvas.png").read_bytes()
        with running_server(command, {"LOG_LEVEL": "warning"}, lambda url: post(url, canvas)) as (
            server
        ):
            print(f"burst of {BURST} worst-case images ...", flush=True)
            burst_figures = burst(server.url, server.pid)
            print(f"mixed load for {SOAK_SECONDS} s ...", flush=True)
            load = mixed_load(server.url, server.pid, listing)
    text, targets = report(burst_figures, load)
    RESULTS.write_text(text)
    print(text)
    print(f"written to {RESULTS.relative_to(PROJECT_ROOT)}")
    return 0 if all(met for _, met in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
