"""The server entry point: settings from the environment, several workers, TCP_NODELAY."""

import http.client
import socket

from app.serve import TcpNoDelayConfig
from tests.conftest import free_port, running_server


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
    with running_server(WORKERS="2") as url:
        # One connection, several requests: keep-alive works and every answer is right.
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
        for _ in range(5):
            connection.request(
                "POST", "/api/predict", body=seven_png, headers={"Content-Type": "image/png"}
            )
            response = connection.getresponse()
            assert response.status == 200
            assert b'"digit":7' in response.read()
