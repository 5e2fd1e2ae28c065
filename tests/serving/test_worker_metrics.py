"""GET /metrics of the real server with two workers: every request counted once, whichever
worker served it, also after that worker died; a dead worker's gauges leave the sums; a
fresh metrics directory per start, removed at the end; the metrics port alone serves them."""

import http.client
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import RunningServer, encode, free_port, running_server
from tests.serving.test_metrics import Samples, parse_samples
from tests.serving.test_server import (
    ESTABLISHED,
    LISTEN,
    listening_workers,
    listening_workers_now,
    owners,
    predict,
    process_is_gone,
    tcp_sockets,
    wait_for,
)

# Each test starts, and some kill, real servers with two workers: not in make test-fast.
pytestmark = pytest.mark.slow

PNG = {"Content-Type": "image/png"}
CONNECTIONS = 16


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        return parse_samples(response.read().decode())


def open_connections(server: RunningServer) -> list[http.client.HTTPConnection]:
    """CONNECTIONS keep-alive connections opened together, as a load generator opens them."""
    connections = [
        http.client.HTTPConnection(f"127.0.0.1:{server.port}", timeout=30)
        for _ in range(CONNECTIONS)
    ]
    for connection in connections:
        connection.connect()
    return connections


def assert_served_by_every_worker(server: RunningServer, workers: set[int]) -> None:
    """Once the connections have been answered, each worker holds some of them (all on one
    would happen by chance once in 32,768 runs)."""
    port = server.port
    served = owners(tcp_sockets(port, ESTABLISHED) - tcp_sockets(port, LISTEN))
    assert {pid for pid in served if pid in workers} == workers, served


def send(connection: http.client.HTTPConnection, body: bytes) -> int:
    connection.request("POST", "/api/predict", body=body, headers=PNG)
    response = connection.getresponse()
    response.read()
    return response.status


def metrics_directories(temporary: Path) -> list[Path]:
    """The metrics directories of servers started with TMPDIR=temporary."""
    return sorted(temporary.glob("digit-canvas-metrics-*"))


def test_every_request_is_counted_once_across_two_workers(seven_png: bytes) -> None:
    blank = encode(Image.new("RGB", (280, 280), "white"))
    metrics_port = free_port()
    with running_server(WORKERS="2", DIGIT_CANVAS_METRICS_PORT=str(metrics_port)) as server:
        workers = set(listening_workers(server.port, 2))
        connections = open_connections(server)
        statuses = [
            send(connection, body)
            for connection in connections
            for body in (seven_png, seven_png, b"not an image", blank)
        ]
        assert_served_by_every_worker(server, workers)
        for connection in connections:
            connection.close()
        assert statuses.count(200) == 2 * CONNECTIONS
        samples = scrape(f"http://127.0.0.1:{metrics_port}")
        with pytest.raises(urllib.error.HTTPError, match="404"):
            scrape(server.url)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, frozenset(labels.items())), 0.0)

    requests = "digit_canvas_http_requests_total"
    assert value(requests, method="POST", route="/api/predict", status="200") == 32
    assert value(requests, method="POST", route="/api/predict", status="415") == 16
    assert value(requests, method="POST", route="/api/predict", status="422") == 16
    latency = "digit_canvas_http_request_duration_seconds_count"
    assert value(latency, method="POST", route="/api/predict") == 64
    assert value("digit_canvas_predictions_total", digit="7") == 32
    assert sum(value("digit_canvas_predictions_total", digit=str(d)) for d in range(10)) == 32
    rejected = "digit_canvas_rejected_inputs_total"
    assert value(rejected, status="415", reason="unsupported_image") == 16
    assert value(rejected, status="422", reason="empty_drawing") == 16
    # The sevens and the blank canvases; bytes of no image format stop before.
    assert value("digit_canvas_preprocessing_seconds_count", where="inline") == 48
    assert value("digit_canvas_inference_seconds_count") == 32
    # Gauges of the live workers: the scrape is the one request in progress; the model
    # info is 1, not one per worker.
    assert value("digit_canvas_http_requests_in_progress") == 1
    [model_info] = [key for key in samples if key[0] == "digit_canvas_model_info"]
    assert samples[model_info] == 1


def test_a_dead_workers_counts_stay_and_its_gauges_go(seven_png: bytes, tmp_path: Path):
    with running_server(WORKERS="2", TMPDIR=str(tmp_path)) as server:
        first, second = listening_workers(server.port, 2)
        connections = open_connections(server)
        assert [send(connection, seven_png) for connection in connections] == [200] * 16
        assert_served_by_every_worker(server, {first, second})
        for connection in connections:
            connection.close()
        [directory] = metrics_directories(tmp_path)
        live_gauges = directory / f"gauge_livesum_{first}.db"
        assert live_gauges.exists()

        os.kill(first, signal.SIGKILL)
        wait_for(lambda: process_is_gone(first), "the killed worker is reaped")
        wait_for(lambda: not live_gauges.exists(), "the dead worker's live gauges removed")
        wait_for(lambda: len(listening_workers_now(server.port)) == 2, "a new worker")
        samples = scrape(server.url)
        ok = frozenset({("method", "POST"), ("route", "/api/predict"), ("status", "200")})
        assert samples[("digit_canvas_http_requests_total", ok)] == 16
        assert samples[("digit_canvas_http_requests_in_progress", frozenset())] == 1
        assert (directory / f"counter_{first}.db").exists()  # what it counted, kept
    assert not directory.exists()  # removed when the server stopped


def test_each_start_counts_from_zero(seven_png: bytes, tmp_path: Path) -> None:
    for start in (1, 2):
        with running_server(WORKERS="2", TMPDIR=str(tmp_path)) as server:
            listening_workers(server.port, 2)
            assert len(metrics_directories(tmp_path)) == 1
            connection = http.client.HTTPConnection(f"127.0.0.1:{server.port}", timeout=30)
            assert predict(connection, seven_png) == 7
            connection.close()
            samples = scrape(server.url)
        assert samples[("digit_canvas_predictions_total", frozenset({("digit", "7")}))] == 1, start
        assert not metrics_directories(tmp_path)
