"""Slow and idle clients: a deadline for a request's headers and one for its body.

uvicorn closes a keep-alive connection that stays idle between requests, but gives a new
connection, and a request whose headers or body trickle in, all the time they want: about
1,000 connections that never send a byte exhaust a process' usual open-file limit and the
service with it. Past either deadline the client gets 408 and the connection is closed.
"""

import asyncio
import json
import logging
import socket
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.serving.settings import Settings

logger = logging.getLogger("uvicorn.error")
# Requests in flight get this long to finish after SIGTERM.
GRACEFUL_SHUTDOWN_SECONDS = 10


def address_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def url_host(host: str) -> str:
    """The host as a URL or gunicorn's `bind` writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves connections, alone or as gunicorn's worker."""
    return {
        # Python's own event loop, not uvloop: with handlers that keep the CPU busy for a
        # millisecond or two, uvloop served some connections seconds late (64 connections,
        # 6 s of load: slowest answer 5.8 s under uvloop, 0.27 s under asyncio) and its
        # tracker records responses sent to the wrong request under heavy load (uvloop #645).
        "loop": "asyncio",
        "http": deadline_protocol(settings.header_timeout_seconds),
        "limit_concurrency": settings.max_connections,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        # The client's address from X-Forwarded-For, only when it comes from a proxy trusted
        # by a setting.
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": ",".join(settings.forwarded_allow_ips) or None,
    }


def timeout_response(detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def deadline_protocol(header_seconds: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, closing with 408 a connection whose request line and
    headers have not all arrived `header_seconds` after it opened (or after the previous
    response, for the next request of a keep-alive connection)."""
    too_late = timeout_response(f"the request's headers did not arrive within {header_seconds} s")

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        headers_deadline: asyncio.TimerHandle | None = None

        def start_headers_deadline(self) -> None:
            if self.headers_deadline is None:
                self.headers_deadline = self.loop.call_later(header_seconds, self.headers_late)

        def stop_headers_deadline(self) -> None:
            if self.headers_deadline is not None:
                self.headers_deadline.cancel()
                self.headers_deadline = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.start_headers_deadline()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.start_headers_deadline()

        def on_headers_complete(self) -> None:
            self.stop_headers_deadline()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self.stop_headers_deadline()
            super().connection_lost(exc)

        def headers_late(self) -> None:
            self.headers_deadline = None
            if not self.transport.is_closing():
                logger.debug("closed a connection whose headers did not arrive in time")
                self.transport.write(too_late)
                self.transport.close()

    return HeaderDeadlineProtocol


class BodyDeadlineMiddleware:
    """408 for a request whose body has not all arrived `seconds` after the request began."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        body_complete = False

        async def receive_in_time() -> Message:
            nonlocal body_complete
            if body_complete:  # after the body, receive() only waits for a disconnect
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"the request's body did not arrive within {self.seconds} s",
                    # What is left of the body would be read as the next request.
                    headers={"Connection": "close"},
                ) from None
            body_complete = message["type"] != "http.request" or not message.get("more_body")
            return message

        await self.app(scope, receive_in_time, send)
