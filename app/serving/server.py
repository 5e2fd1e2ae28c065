"""Run the server: `python -m app.serve` (host, port, workers and log level from settings).

One worker is uvicorn alone; several are gunicorn's arbiter with uvicorn's workers, each
listening on a socket of its own (see app.serving.workers).
"""

import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from app.serving.settings import Settings
from app.serving.workers import GRACEFUL_SHUTDOWN_SECONDS, run_workers


def main() -> None:
    settings = Settings()
    if settings.workers > 1:
        sys.exit(run_workers(settings))
    config = uvicorn.Config(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Python's own event loop, not uvloop: with handlers that keep the CPU busy for a
        # millisecond or two, uvloop served some connections seconds late (64 connections,
        # 6 s of load: slowest answer 5.8 s under uvloop, 0.27 s under asyncio) and its
        # tracker records responses sent to the wrong request under heavy load (uvloop #645).
        loop="asyncio",
        http="httptools",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)  # as uvicorn.run does: the application failed to start
