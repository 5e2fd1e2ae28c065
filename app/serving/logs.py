"""Logs that stay readable under attack: errors that repeat by the thousand (no file
descriptor left to accept a connection, too many connections) are logged once a minute, on
one line, with how many were left out."""

import asyncio
import errno
import logging
import time
from typing import Any

logger = logging.getLogger("uvicorn.error")

REPEAT_SECONDS = 60.0
# The errors accept() gives when the process or the system is out of a resource.
OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
CANNOT_ACCEPT = "cannot accept connections: %s"
# uvicorn's own warning for each request over `limit_concurrency`.
OVER_CONNECTION_LIMIT = "Exceeded concurrency limit."


class OncePerInterval(logging.Filter):
    """Lets each of `messages` through once per `seconds`; the next one that passes says
    how many were left out since."""

    def __init__(self, messages: set[str], seconds: float = REPEAT_SECONDS) -> None:
        super().__init__()
        self.messages = messages
        self.seconds = seconds
        self.last_passed: dict[str, float] = {}
        self.left_out: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message not in self.messages:
            return True
        now = time.monotonic()
        if now - self.last_passed.get(message, -self.seconds) < self.seconds:
            self.left_out[message] = self.left_out.get(message, 0) + 1
            return False
        self.last_passed[message] = now
        if left_out := self.left_out.pop(message, 0):
            record.msg = f"{message} ({left_out} more like it in the last {self.seconds:.0f} s)"
        return True


def quiet_accept_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An event loop exception handler: asyncio logs a traceback each time accept() runs out
    of file descriptors (and retries every second); one line is enough."""
    error = context.get("exception")
    if isinstance(error, OSError) and error.errno in OUT_OF_RESOURCES:
        logger.warning(CANNOT_ACCEPT, error.strerror)
        return
    loop.default_exception_handler(context)


def quiet_repeated_errors() -> None:
    """For the running event loop and uvicorn's log."""
    asyncio.get_running_loop().set_exception_handler(quiet_accept_errors)
    if not any(isinstance(existing, OncePerInterval) for existing in logger.filters):
        logger.addFilter(OncePerInterval({CANNOT_ACCEPT, OVER_CONNECTION_LIMIT}))
