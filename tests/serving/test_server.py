"""The server as `make run` starts it: several workers each with its own socket, the kernel
spreading connections over them; a worker that dies replaced, after a growing delay when it
keeps dying; no worker left behind by a killed supervisor; the signals operators send; a
port in use or a missing model failing fast; a large upload read whole; and the ASGI
application served by `uvicorn app.main:app` and `fastapi run` as well."""

import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.paths import PROJECT_ROOT
from app.serving.workers import SHORTEST_RESTART_DELAY
from app.training.data import MnistData
from app.training.drawings import DrawingStyle, render_drawing
from bench.run import multipart_body
from tests.conftest import RunningServer, encode, free_port, run_module, running_server

pytestmark = pytest.mark.slow

LARGE_PHOTO = DrawingStyle(canvas_size=(2000, 2000), digit_height=1200)

LISTEN, ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp writes them


def tcp_sockets(port: int, state: str) -> set[int]:
    """Inodes of the IPv4 TCP sockets in `state` whose local port is `port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            inodes.add(int(fields[9]))
    return inodes


def owners(inodes: set[int]) -> dict[int, int]:
    """How many of these sockets each process holds, by pid."""
    counts: dict[int, int] = {}
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            links = [str(fd.readlink()) for fd in (process / "fd").iterdir()]
        except OSError:
            continue  # the process or a descriptor went away meanwhile
        for link in links:
            match = re.fullmatch(r"socket:\[(\d+)\]", link)
            if match and int(match.group(1)) in inodes:
                counts[int(process.name)] = counts.get(int(process.name), 0) + 1
    return counts


def wait_for(
    condition: Callable[[], object], what: str, timeout: float = 60, interval: float = 0.1
) -> object:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"not in {timeout} s: {what}"
        time.sleep(interval)
    return result


def listening_workers(port: int, count: int) -> dict[int, int]:
    """The processes listening on `port`, once there are `count` of them."""
    return wait_for(
        lambda: (found := owners(tcp_sockets(port, LISTEN))) and len(found) == count and found,
        f"{count} workers listening on {port}",
    )


def process_is_gone(pid: int) -> bool:
    """Whether `pid` has exited (a zombie still waiting for its parent counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def predict(connection: http.client.HTTPConnection, png: bytes) -> int:
    connection.request("POST", "/api/predict", body=png, headers={"Content-Type": "image/png"})
    response = connection.getresponse()
    assert response.status == 200
    return int(re.search(rb'"digit":(\d)', response.read()).group(1))


def predict_on_new_connection(server: RunningServer, png: bytes) -> int:
    connection = http.client.HTTPConnection(f"127.0.0.1:{server.port}", timeout=30)
    try:
        return predict(connection, png)
    finally:
        connection.close()


def test_connections_opened_together_are_spread_over_both_workers(seven_png: bytes) -> None:
    with running_server(WORKERS="2") as server:
        workers = listening_workers(server.port, 2)
        assert set(workers.values()) == {1}  # a socket of its own each

        # 16 keep-alive connections, as a browser or a load generator opens them at once.
        connections = [
            http.client.HTTPConnection(f"127.0.0.1:{server.port}", timeout=30) for _ in range(16)
        ]
        for connection in connections:
            connection.connect()
        answers = [predict(connection, seven_png) for connection in connections for _ in "ab"]
        assert answers == [7] * 32  # two requests on each connection: keep-alive works

        # All 16 on one worker would happen by chance once in 32,768 runs.
        port = server.port
        served = owners(tcp_sockets(port, ESTABLISHED) - tcp_sockets(port, LISTEN))
        served = {pid: count for pid, count in served.items() if pid in workers}
        assert set(served) == set(workers), served
        assert sum(served.values()) == 16
        for connection in connections:
            connection.close()


def test_a_worker_that_dies_is_replaced_while_the_other_serves(seven_png: bytes) -> None:
    with running_server(WORKERS="2") as server:
        first, second = listening_workers(server.port, 2)
        sockets = tcp_sockets(server.port, LISTEN)
        os.kill(first, signal.SIGKILL)
        # Connections queued at the killed worker's socket die with it; later ones do not.
        # Its socket closes with its last thread, which may exit after its main thread shows
        # as a zombie: a connection in between was reset.
        wait_for(
            lambda: len(tcp_sockets(server.port, LISTEN) & sockets) == 1,
            "the killed worker's socket is closed",
        )
        while len(workers := listening_workers_now(server.port)) < 2:
            # Each request on a new connection: the kernel sends it to a live worker.
            assert predict_on_new_connection(server, seven_png) == 7
            time.sleep(0.2)
        assert second in workers and first not in workers
        assert predict_on_new_connection(server, seven_png) == 7


def listening_workers_now(port: int) -> set[int]:
    return set(owners(tcp_sockets(port, LISTEN)))


def test_a_worker_that_keeps_dying_is_restarted_after_growing_delays(seven_png: bytes) -> None:
    with running_server(WORKERS="2") as server:
        listening_workers(server.port, 2)
        delays = []
        for _ in range(2):
            victim = next(iter(listening_workers(server.port, 2)))
            os.kill(victim, signal.SIGKILL)  # dies at once after its start: a crash loop
            killed = time.monotonic()
            wait_for(
                lambda victim=victim: len(listening_workers_now(server.port) - {victim}) == 2,
                "a replacement worker",
            )
            delays.append(time.monotonic() - killed)
            # The other worker served all along.
            assert predict_on_new_connection(server, seven_png) == 7
        # The first death counts as a crash (the worker had just started); the next one
        # waits twice as long.
        assert delays[0] >= SHORTEST_RESTART_DELAY
        assert delays[1] >= 2 * SHORTEST_RESTART_DELAY


def test_workers_stop_when_their_supervisor_is_killed(seven_png: bytes, tmp_path: Path) -> None:
    # A supervisor killed cannot remove its metrics directory: in this test's, not in /tmp.
    with running_server(WORKERS="2", TMPDIR=str(tmp_path)) as server:
        workers = listening_workers(server.port, 2)
        server.process.kill()  # SIGKILL: the supervisor cannot tell its workers anything
        server.process.wait(timeout=10)
        for worker in workers:
            wait_for(lambda worker=worker: process_is_gone(worker), f"worker {worker} exits")
        assert not tcp_sockets(server.port, LISTEN)
    # The port is free again: a new server starts on it.
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(server.port), "WORKERS": "2"}
    restarted = subprocess.Popen([sys.executable, "-m", "app.serve"], cwd=PROJECT_ROOT, env=env)
    try:
        listening_workers(server.port, 2)
    finally:
        restarted.terminate()
        assert restarted.wait(timeout=30) == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_stop_every_process(stop: signal.Signals, seven_png: bytes) -> None:
    with running_server(WORKERS="2") as server:
        workers = listening_workers(server.port, 2)
        assert predict_on_new_connection(server, seven_png) == 7
        server.process.send_signal(stop)
        assert server.process.wait(timeout=30) == 0
        assert all(process_is_gone(worker) for worker in workers)
        assert not tcp_sockets(server.port, LISTEN)


def test_sighup_replaces_the_workers_while_the_service_answers(seven_png: bytes) -> None:
    with running_server(WORKERS="2") as server:
        old = set(listening_workers(server.port, 2))
        server.process.send_signal(signal.SIGHUP)
        answered = 0
        while (
            old & listening_workers_now(server.port) or len(listening_workers_now(server.port)) < 2
        ):
            assert predict_retrying_a_reset(server, seven_png) == 7
            answered += 1
        assert answered > 0
        assert not old & set(listening_workers(server.port, 2))


def predict_retrying_a_reset(server: RunningServer, png: bytes) -> int:
    """A prediction on a new connection, asked again if the connection was reset: one that
    waited at a retiring worker's own socket is reset when it closes (SO_REUSEPORT; the
    kernel hands such connections over only with net.ipv4.tcp_migrate_req=1). Reset while
    the request is still being sent, it is a broken pipe to the client."""
    try:
        return predict_on_new_connection(server, png)
    except (ConnectionResetError, BrokenPipeError):
        return predict_on_new_connection(server, png)


def test_a_large_photo_arrives_in_many_chunks_and_is_read_whole(mnist: MnistData) -> None:
    # A 2000x2000 photo of paper (grain of +-12 levels) reaches the app in several chunks;
    # the multipart parser must join them, and the preprocessing runs off the event loop.
    drawing = Image.open(io.BytesIO(render_drawing(mnist.x_test[0], LARGE_PHOTO))).convert("L")
    grain = np.random.default_rng(0).integers(-12, 13, (2000, 2000))
    photo = np.clip(np.asarray(drawing, dtype=np.int64) + grain, 0, 255).astype(np.uint8)
    png = encode(Image.fromarray(photo))
    assert len(png) > 1_500_000  # uvicorn passes it on a socket read (at most 256 kB) at a time
    with running_server() as server:
        connection = http.client.HTTPConnection(f"127.0.0.1:{server.port}", timeout=60)
        body, boundary = multipart_body(png)
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        connection.request("POST", "/api/predict", body=body, headers=headers)
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["digit"] == 7


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_fails_fast_with_a_clear_message(workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": workers}
        result = run_module("app.serve", env=env)
    assert result.returncode == 3  # uvicorn's status for a failed start-up
    assert "in use" in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_missing_model_stops_the_server_with_a_clear_message(workers: str) -> None:
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "WORKERS": workers,
        "DIGIT_CANVAS_MODEL_PATH": "/nonexistent/model.keras",
    }
    result = run_module("app.serve", env=env)
    # Not a worker restarted forever: the supervisor stops when a worker cannot start.
    assert result.returncode == 3
    assert "Cannot serve the model: /nonexistent/model.keras: model file not found" in (
        result.stderr
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_start_up_log_has_no_warnings(workers: str) -> None:
    # What an operator reads at every start: the server's own lines, no library chatter.
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "info",
        "WORKERS": workers,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "app.serve"],
        cwd=PROJECT_ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    try:
        for line in server.stderr:
            lines.append(line)
            if sum("Application startup complete" in line for line in lines) == int(workers):
                break
    finally:
        server.terminate()
        lines += server.communicate(timeout=30)[1].splitlines(keepends=True)
    assert sum("Application startup complete" in line for line in lines) == int(workers), lines
    assert not [line for line in lines if "WARNING" in line or "ERROR" in line], lines


ASGI_SERVERS = {
    "uvicorn app.main:app": (sys.executable, "-m", "uvicorn", "app.main:app", "--port", "{port}"),
    "fastapi run": (
        str(Path(sys.executable).with_name("fastapi")),
        *("run", "--host", "127.0.0.1", "--port", "{port}"),
    ),
}


@pytest.mark.parametrize("name", ASGI_SERVERS)
def test_the_application_runs_under_plain_asgi_servers(name: str, seven_png: bytes) -> None:
    with running_server(*ASGI_SERVERS[name]) as server:
        assert predict_on_new_connection(server, seven_png) == 7
