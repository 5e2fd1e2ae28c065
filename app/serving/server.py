"""Run the server: `python -m app.serve` (host, port, workers and log level from settings).

One worker is uvicorn alone; several are gunicorn's arbiter with uvicorn's workers, each
listening on a socket of its own (see app.serving.workers). Either listens on the metrics
port too when one is set (see app.serving.metrics).
"""

import logging
import logging.config
import resource
import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from app.serving.connections import address_family, url_host, uvicorn_options
from app.serving.json_logs import log_config
from app.serving.settings import Settings
from app.serving.workers import run_workers

logger = logging.getLogger("uvicorn.error")


def raise_open_file_limit() -> None:
    """Up to the hard limit: the usual soft limit of 1,024 is a thousand idle connections."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port; uvicorn listens on it once the application started,
    so that until then a client is refused rather than kept waiting."""
    # The protocol is named, not left 0: asyncio sets TCP_NODELAY on accepted connections only
    # when the listener says IPPROTO_TCP; without it every keep-alive request waits ~40 ms on
    # the client's delayed ACK (uvicorn #3149).
    bound = socket.socket(address_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bound.bind((host, port))
    except OSError:
        bound.close()
        raise
    return bound


def serve_alone(settings: Settings, logging_config: dict) -> None:
    """uvicorn alone, on its sockets bound here: the public port's and the metrics port's."""
    sockets = []
    for port in settings.ports:
        try:
            sockets.append(bound_socket(settings.host, port))
        except OSError as error:
            logger.error("cannot listen on %s:%d: %s", settings.host, port, error.strerror)
            sys.exit(STARTUP_FAILURE)
    # uvicorn names the address it listens on only when it binds the socket itself.
    host = url_host(settings.host)
    logger.info("Listening on http://%s:%d (Press CTRL+C to quit)", host, settings.port)
    if settings.metrics_port is not None:
        logger.info("Metrics on http://%s:%d/metrics", host, settings.metrics_port)
    config = uvicorn.Config(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=logging_config,
        # With JSON logs, the application writes each request's line itself.
        access_log=settings.log_format == "text",
        **uvicorn_options(settings),
    )
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
    if not server.started:
        sys.exit(STARTUP_FAILURE)  # as uvicorn.run does: the application failed to start


def main() -> None:
    settings = Settings()
    logging_config = log_config(settings)
    # The supervisor's own lines in the same format, before uvicorn or gunicorn set up theirs.
    logging.config.dictConfig(logging_config)
    raise_open_file_limit()
    if settings.workers > 1:
        sys.exit(run_workers(settings))
    serve_alone(settings, logging_config)
