"""Slow, idle and vanishing clients against the real server: 408 past the header and body
deadlines, the service alive with more idle connections than it has file descriptors, and
an aborted upload logged as one quiet line."""

import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.paths import PROJECT_ROOT
from tests.conftest import RunningServer, free_port, wait_until_ready

pytestmark = pytest.mark.slow

REQUEST_HEAD = b"POST /api/predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"


@contextmanager
def logged_server(
    open_files: int | None = None, **settings: str
) -> Iterator[tuple[RunningServer, Path]]:
    """The server with its log in a file, and at most `open_files` file descriptors."""
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "info", **settings}

    def limit_open_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with tempfile.TemporaryDirectory() as directory:
        log = Path(directory) / "server.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "app.serve"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=limit_open_files,  # noqa: PLW1509 - setrlimit only, before exec
            )
            url = f"http://127.0.0.1:{port}"
            try:
                wait_until_ready(url, process)
                yield RunningServer(url, port, process), log
            finally:
                process.terminate()
                process.wait(timeout=30)


def read_response(connection: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of the one response on `connection`, read until it closes."""
    connection.settimeout(15)
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_headers_that_do_not_arrive_in_time_get_408() -> None:
    with logged_server(DIGIT_CANVAS_HEADER_TIMEOUT_SECONDS="1") as (server, _):
        idle = socket.create_connection(("127.0.0.1", server.port))
        trickling = socket.create_connection(("127.0.0.1", server.port))
        trickling.sendall(REQUEST_HEAD[:20])  # half a request line, then nothing
        for connection in (idle, trickling):
            status, body = read_response(connection)
            assert status == 408
            assert body == {"detail": "the request's headers did not arrive within 1.0 s"}
            connection.close()


def test_a_body_that_does_not_arrive_in_time_gets_408() -> None:
    with logged_server(DIGIT_CANVAS_BODY_TIMEOUT_SECONDS="1") as (server, _):
        connection = socket.create_connection(("127.0.0.1", server.port))
        connection.sendall(REQUEST_HEAD + b"Content-Length: 5000\r\n\r\n" + b"\x89PNG" * 10)
        status, body = read_response(connection)
        assert status == 408
        assert body == {"detail": "the request's body did not arrive within 1.0 s"}
        connection.close()


def test_an_aborted_upload_is_one_quiet_line(seven_png: bytes) -> None:
    with logged_server() as (server, log):
        connection = socket.create_connection(("127.0.0.1", server.port))
        connection.sendall(REQUEST_HEAD + b"Content-Length: 100000\r\n\r\n" + seven_png[:1000])
        time.sleep(0.3)
        connection.close()  # the client gives up in the middle of its upload
        check = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        check.request("GET", "/healthz")
        assert check.getresponse().status == 200
        time.sleep(0.3)
        text = log.read_text()
    assert text.count("the client disconnected before its request arrived") == 1
    assert "Traceback" not in text and "ERROR" not in text


def test_more_idle_connections_than_file_descriptors_do_not_stop_the_service(
    seven_png: bytes,
) -> None:
    # The test itself needs a descriptor per connection.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with logged_server(open_files=1024, DIGIT_CANVAS_HEADER_TIMEOUT_SECONDS="3") as (
        server,
        log,
    ):
        idle = []
        for _ in range(1100):
            try:
                idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=2))
            except OSError:
                break  # the listening queue is full as well
        assert len(idle) > 1024
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                connection.request(
                    "POST", "/api/predict", body=seven_png, headers={"Content-Type": "image/png"}
                )
                response = connection.getresponse()
                if response.status == 200:
                    assert json.loads(response.read())["digit"] == 7
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "no prediction while idle connections are held"
            time.sleep(0.5)
        for connection in idle:
            connection.close()
        log_size = log.stat().st_size
    assert log_size < 1024 * 1024
