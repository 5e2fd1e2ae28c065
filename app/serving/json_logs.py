"""LOG_FORMAT=json: every log line one JSON object, uvicorn's, gunicorn's and ours alike.

`{"time": ..., "level": "INFO", "logger": "uvicorn.error", "message": ...}`, with the request's
id while a request is handled, the request's fields on its own line (see
app.serving.request_logs), and a traceback as one string. The same logging configuration
serves uvicorn alone (its `log_config`) and gunicorn (its `logconfig_dict`, whose loggers
uvicorn's worker then writes through). As uvicorn and gunicorn do, request lines go to
standard output and everything else to standard error.
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG

from app.serving.request_logs import REQUEST_LOGGER, current_request_id
from app.serving.settings import Settings

# What a request's line carries beside its message and id (the `extra` of its logging call).
REQUEST_FIELDS = ("method", "path", "status", "duration_ms", "client")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # A request's own line names it; any other line written while a request is handled
        # (a traceback, say) belongs to that request, formatted as it is logged.
        request_id = getattr(record, "request_id", None) or current_request_id.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for field in REQUEST_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def json_log_config(level: int) -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn's, gunicorn's and the app's loggers."""

    def stream(name: str) -> dict[str, str]:
        return {"class": "logging.StreamHandler", "formatter": "json", "stream": f"ext://{name}"}

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stdout": stream("sys.stdout"), "stderr": stream("sys.stderr")},
        # Libraries' warnings (asyncio's, say) in the same format.
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "gunicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            REQUEST_LOGGER: {"handlers": ["stdout"], "level": level, "propagate": False},
        },
    }


def log_config(settings: Settings) -> dict[str, Any]:
    """The logging configuration `python -m app.serve` applies: uvicorn's own for text."""
    if settings.log_format == "json":
        return json_log_config(LOG_LEVELS[settings.log_level])
    return LOGGING_CONFIG
