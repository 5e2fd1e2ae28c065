"""Run the server: `python -m app.serve` (host, port, workers and log level from settings)."""

import uvicorn

from app.config import get_settings


def main() -> None:
    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        # Requests in flight get this long to finish after SIGTERM.
        timeout_graceful_shutdown=10,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
