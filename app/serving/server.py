"""Run the server: `python -m app.serve` (host, port, workers and log level from settings).

One worker is uvicorn alone; several are gunicorn's arbiter with uvicorn's workers, each
listening on a socket of its own (see app.serving.workers).
"""

import resource
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from app.serving.connections import uvicorn_options
from app.serving.settings import Settings
from app.serving.workers import run_workers


def raise_open_file_limit() -> None:
    """Up to the hard limit: the usual soft limit of 1,024 is a thousand idle connections."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    settings = Settings()
    raise_open_file_limit()
    if settings.workers > 1:
        sys.exit(run_workers(settings))
    config = uvicorn.Config(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        **uvicorn_options(settings),
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)  # as uvicorn.run does: the application failed to start
