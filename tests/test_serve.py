"""The server entry point: settings from the environment, several workers, TCP_NODELAY."""

import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.request

from app.artifacts import PROJECT_ROOT
from app.serve import TcpNoDelayConfig
from tests.test_page import free_port


def test_workers_listen_on_a_socket_marked_tcp() -> None:
    # asyncio sets TCP_NODELAY on accepted connections only when the listener says IPPROTO_TCP;
    # uvicorn's own bind_socket() leaves it 0 (uvicorn #3149).
    config = TcpNoDelayConfig("app.main:create_app", factory=True, port=free_port(), workers=2)
    listener = config.bind_socket()
    try:
        assert listener.proto == socket.IPPROTO_TCP
        assert listener.getsockname()[1] == config.port
    finally:
        listener.close()


def test_two_workers_serve_keep_alive_requests(seven_png: bytes) -> None:
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "2"}
    server = subprocess.Popen([sys.executable, "-m", "app.serve"], cwd=PROJECT_ROOT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
        # One connection, several requests: keep-alive works and every answer is right.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(5):
            connection.request(
                "POST", "/api/predict", body=seven_png, headers={"Content-Type": "image/png"}
            )
            response = connection.getresponse()
            assert response.status == 200
            assert b'"digit":7' in response.read()
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
