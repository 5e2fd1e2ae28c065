"""Run the server: `python -m app.serve` (host, port, workers and log level from settings)."""

import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from app.config import get_settings


class TcpNoDelayConfig(uvicorn.Config):
    """uvicorn's Config, with the listening socket of several workers marked as TCP.

    With `workers > 1` uvicorn binds the socket itself, leaving its protocol at 0; asyncio then
    never sets TCP_NODELAY on accepted connections, and every keep-alive request waits ~40 ms
    on the client's delayed ACK (uvicorn issue #3149; measured here: 44 ms per request with 2
    workers, against 2 ms with one). The same file descriptor, re-wrapped as IPPROTO_TCP.
    """

    def bind_socket(self) -> socket.socket:
        bound = super().bind_socket()
        if bound.family not in (socket.AF_INET, socket.AF_INET6):
            return bound
        return socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, bound.detach())


def main() -> None:
    settings = get_settings()
    config = TcpNoDelayConfig(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        # Python's own event loop, not uvloop: with handlers that keep the CPU busy for a
        # millisecond or two, uvloop served some connections seconds late (64 connections,
        # 6 s of load: slowest answer 5.8 s under uvloop, 0.27 s under asyncio) and its
        # tracker records responses sent to the wrong request under heavy load (uvloop #645).
        loop="asyncio",
        http="httptools",
        # Requests in flight get this long to finish after SIGTERM.
        timeout_graceful_shutdown=10,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        server.run()
        if not server.started:
            sys.exit(3)  # as uvicorn.run does: the application failed to start


if __name__ == "__main__":
    main()
