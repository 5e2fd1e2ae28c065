"""Every error is JSON {"detail": "..."} with a status that says whose fault it was."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.preprocess import PreprocessError


def describe_validation_error(error: RequestValidationError) -> str:
    """One readable line: "pixels.3: Input should be a finite number; ..."."""
    problems = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"] if part not in ("body", "query"))
        problems.append(f"{location}: {problem['msg']}" if location else problem["msg"])
    # A malformed list of 784 values can fail on every one; the first few say enough.
    shown = "; ".join(problems[:3])
    return shown + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")


async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": describe_validation_error(error)}, status_code=422)


async def preprocess_error(request: Request, error: PreprocessError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=error.status_code)


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """A bug: the client gets JSON without internals; the server log gets the traceback."""
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(PreprocessError, preprocess_error)
    app.add_exception_handler(Exception, unexpected_error)
