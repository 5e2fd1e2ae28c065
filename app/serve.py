"""Run the server: `python -m app.serve` (host, port, workers and log level from settings)."""

import os
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from app.config import get_settings
from app.workers import WorkerPool


def main() -> None:
    # The server reads the model's weights with Keras and runs the network in NumPy, so
    # TensorFlow's oneDNN kernels never run; off, they no longer print two lines of warnings
    # at every start. (Training keeps them: `python -m app.train` does not come here.)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    settings = get_settings()
    config = uvicorn.Config(
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
    if config.workers > 1:
        sys.exit(WorkerPool(config).run())
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)  # as uvicorn.run does: the application failed to start


if __name__ == "__main__":
    main()
