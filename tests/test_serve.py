"""The server as `make run` starts it: several workers each with its own socket, the kernel
spreading connections over them, a worker that dies replaced, a port in use or a missing
model failing fast, and a large upload read whole."""

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
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.artifacts import PROJECT_ROOT
from app.data import MnistData
from app.drawings import DrawingStyle, render_drawing
from app.workers import worker_socket
from bench.run import multipart_body
from tests.conftest import encode, free_port, run_module, running_server

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
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            match = re.fullmatch(r"socket:\[(\d+)\]", str(fd.readlink()))
        except OSError:
            continue  # the process or descriptor went away meanwhile
        if match and int(match.group(1)) in inodes:
            pid = int(fd.parent.parent.name)
            counts[pid] = counts.get(pid, 0) + 1
    return counts


def test_worker_sockets_are_tcp_and_share_a_port() -> None:
    port = free_port()
    with worker_socket("127.0.0.1", port) as one, worker_socket("127.0.0.1", port) as two:
        # asyncio sets TCP_NODELAY on accepted connections only when the listener says
        # IPPROTO_TCP; a socket made with protocol 0 makes each keep-alive request wait ~40 ms.
        assert one.proto == two.proto == socket.IPPROTO_TCP
        # Bound but not listening, the second gets no connection: none is queued for a
        # worker still starting. (Were both listening, about half would go to each.)
        one.listen()
        one.settimeout(5)
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(16)]
        accepted = [one.accept()[0] for _ in clients]
        for connection in accepted + clients:
            connection.close()


def listening_workers(port: int, count: int) -> dict[int, int]:
    """The processes listening on `port`, once there are `count` of them: a worker starts
    listening when it has loaded the model, one may answer before the other is ready."""
    deadline = time.monotonic() + 120
    while len(workers := owners(tcp_sockets(port, LISTEN))) < count:
        assert time.monotonic() < deadline, f"{len(workers)} of {count} workers listen"
        time.sleep(0.2)
    return workers


def predict(connection: http.client.HTTPConnection, png: bytes) -> int:
    connection.request("POST", "/api/predict", body=png, headers={"Content-Type": "image/png"})
    response = connection.getresponse()
    assert response.status == 200
    return int(re.search(rb'"digit":(\d)', response.read()).group(1))


def test_connections_opened_together_are_spread_over_both_workers(seven_png: bytes) -> None:
    with running_server(WORKERS="2") as url:
        port = int(url.rsplit(":", 1)[1])
        workers = listening_workers(port, 2)
        assert set(workers.values()) == {1}  # a socket of its own each

        # 16 keep-alive connections, as a browser or a load generator opens them at once.
        connections = [
            http.client.HTTPConnection(url.removeprefix("http://"), timeout=30) for _ in range(16)
        ]
        for connection in connections:
            connection.connect()
        answers = [predict(connection, seven_png) for connection in connections for _ in "ab"]
        assert answers == [7] * 32  # two requests on each connection: keep-alive works

        # All 16 on one worker would happen by chance once in 32,768 runs.
        served = owners(tcp_sockets(port, ESTABLISHED) - tcp_sockets(port, LISTEN))
        served = {pid: count for pid, count in served.items() if pid in workers}
        assert set(served) == set(workers), served
        assert sum(served.values()) == 16
        for connection in connections:
            connection.close()


def test_a_worker_that_dies_is_replaced_while_the_other_serves(seven_png: bytes) -> None:
    with running_server(WORKERS="2") as url:
        port = int(url.rsplit(":", 1)[1])
        first, second = listening_workers(port, 2)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 120
        # Connections queued at the killed worker's socket die with it; later ones do not.
        # Its socket is closed for sure once the supervisor has reaped it (its /proc entry
        # goes then; its descriptors vanish from there a moment before the socket closes).
        while Path(f"/proc/{first}").exists():
            assert time.monotonic() < deadline, "the killed worker was not reaped"
            time.sleep(0.05)

        while True:
            # Each request on a new connection: the kernel sends it to a live worker.
            connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
            assert predict(connection, seven_png) == 7
            connection.close()
            workers = set(owners(tcp_sockets(port, LISTEN)))
            if len(workers) == 2:
                break
            assert time.monotonic() < deadline, "no worker replaced the one that died"
            time.sleep(0.5)
        assert second in workers and first not in workers


def test_a_large_photo_arrives_in_many_chunks_and_is_read_whole(mnist: MnistData) -> None:
    # A 2000x2000 photo of paper (grain of +-12 levels) reaches the app in several chunks;
    # the multipart parser must join them, and the preprocessing runs off the event loop.
    drawing = Image.open(io.BytesIO(render_drawing(mnist.x_test[0], LARGE_PHOTO))).convert("L")
    grain = np.random.default_rng(0).integers(-12, 13, (2000, 2000))
    photo = np.clip(np.asarray(drawing, dtype=np.int64) + grain, 0, 255).astype(np.uint8)
    png = encode(Image.fromarray(photo))
    assert len(png) > 1_500_000  # uvicorn passes it on a socket read (at most 256 kB) at a time
    with running_server() as url:
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
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
    assert "/nonexistent/model.keras" in result.stderr


def test_the_start_up_log_has_no_warnings() -> None:
    # What an operator reads at every start: uvicorn's lines, not TensorFlow's chatter.
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "info"}
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
            if "Application startup complete" in line:
                break
    finally:
        server.terminate()
        lines += server.communicate(timeout=30)[1].splitlines(keepends=True)
    assert any("Application startup complete" in line for line in lines), lines
    assert not [line for line in lines if "WARNING" in line or "ERROR" in line], lines
