"""Every error is JSON {"detail": "..."} with a status that says whose fault it was; a
refused image's also says why in a word, for programs: {"reason": "empty_drawing"}."""

import json
import logging

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.serving.corrections import StoreUnavailableError
from app.serving.isolation import ServiceBusyError
from app.serving.metrics import HTTP_REJECTION_REASONS, count_rejection
from app.serving.preprocessing import PreprocessError
from app.serving.schemas import ImageError

logger = logging.getLogger("uvicorn.error")
# What FastAPI says when a multipart part meant as a file arrived as a text field: a part
# without a filename parameter, or with RFC 2231's filename*= only (not allowed in
# multipart/form-data, RFC 7578 4.2, so the multipart parser ignores it).
NOT_A_FILE = "Expected UploadFile"
NOT_A_FILE_DETAIL = (
    "a file was expected but a text field arrived: give the part a filename parameter "
    "(filename*= alone is not allowed in multipart/form-data)"
)


def describe_validation_error(error: RequestValidationError) -> str:
    """One readable line: "pixels.3: Input should be a finite number; ..."."""
    problems = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"] if part not in ("body", "query"))
        message = NOT_A_FILE_DETAIL if NOT_A_FILE in problem["msg"] else problem["msg"]
        problems.append(f"{location}: {message}" if location else message)
    # A malformed list of 784 values can fail on every one; the first few say enough.
    shown = "; ".join(problems[:3])
    return shown + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")


async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    count_rejection(422, HTTP_REJECTION_REASONS[422])
    return JSONResponse({"detail": describe_validation_error(error)}, status_code=422)


async def http_error(request: Request, error: HTTPException) -> Response:
    """FastAPI's own answer, counted when it refuses the request for what it carries."""
    if reason := HTTP_REJECTION_REASONS.get(error.status_code):
        count_rejection(error.status_code, reason)
    return await http_exception_handler(request, error)


def refusal_of(error: PreprocessError | ServiceBusyError) -> ImageError:
    """What the answer to a refused image says, the refusal counted in the metrics."""
    count_rejection(error.status_code, error.reason)
    return ImageError(status=error.status_code, detail=str(error), reason=error.reason)


def refused(
    error: PreprocessError | ServiceBusyError, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The answer to a refused image: its status, and its detail and reason in the body."""
    refusal = refusal_of(error)
    return JSONResponse(
        refusal.model_dump(exclude={"status"}), status_code=refusal.status, headers=headers
    )


async def preprocess_error(request: Request, error: PreprocessError) -> JSONResponse:
    return refused(error)


async def service_busy(request: Request, error: ServiceBusyError) -> JSONResponse:
    return refused(error, {"Retry-After": str(error.retry_after)})


async def client_gone(request: Request, error: ClientDisconnect) -> Response:
    """The client went away in the middle of its upload: nobody to answer, nothing wrong."""
    logger.info(
        "%s %s: the client disconnected before its request arrived",
        request.method,
        request.url.path,
    )
    return Response(status_code=400)


async def store_unavailable(request: Request, error: StoreUnavailableError) -> JSONResponse:
    logger.warning("%s %s: %s", request.method, request.url.path, error)
    return JSONResponse({"detail": str(error)}, status_code=503)


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """A bug: the client gets JSON without internals; the server log gets the traceback."""
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(PreprocessError, preprocess_error)
    app.add_exception_handler(ServiceBusyError, service_busy)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(StoreUnavailableError, store_unavailable)
    app.add_exception_handler(Exception, unexpected_error)


class PlainErrorsAsJSONMiddleware:
    """Error responses the framework writes in plain text itself, outside the exception
    handlers (Starlette's request body limit: 413 "Content Too Large"), rewritten as the JSON
    `{"detail": ...}` every other error has."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None  # the start of a plain-text error, until its body
        text = bytearray()

        async def send_as_json(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                if message["status"] >= 400 and content_type.startswith("text/plain"):
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                text.extend(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = json.dumps({"detail": text.decode("utf-8", "replace")}).encode()
                headers = MutableHeaders(raw=list(held.get("headers", [])))
                headers["content-type"] = "application/json"
                headers["content-length"] = str(len(body))
                await send({**held, "headers": headers.raw})
                message = {"type": "http.response.body", "body": body}
            await send(message)

        await self.app(scope, receive, send_as_json)
