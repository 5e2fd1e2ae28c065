"""Images from a request: multipart form files, or the raw body with an image/* type."""

from dataclasses import dataclass

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.body_limit import RequestBodyTooLargeError

SUPPORTED_BODY = (
    "send the image as multipart/form-data field 'file', or as the raw body with an "
    "image/* Content-Type"
)


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_uploads(
    request: Request, field_names: tuple[str, ...], max_files: int
) -> list[Upload]:
    """The images in `request`, in order: form files named `field_names`, or the raw body."""
    kind = media_type(request)
    if kind.startswith("image/"):
        return [Upload(filename=None, data=await request.body())]
    if kind != "multipart/form-data":
        raise HTTPException(415, f"unsupported Content-Type {kind or '(none)'!r}: {SUPPORTED_BODY}")
    try:
        async with request.form(max_files=max_files, max_fields=max_files) as form:
            files = [
                value
                for name, value in form.multi_items()
                if name in field_names and isinstance(value, UploadFile)
            ]
            return [Upload(filename=file.filename, data=await file.read()) for file in files]
    except RequestBodyTooLargeError:
        raise
    except StarletteHTTPException as error:
        # Starlette answers 400 both for a malformed body and for too many parts; say which.
        if "Too many" in str(error.detail):
            raise HTTPException(413, f"at most {max_files} images per request") from None
        raise HTTPException(422, f"malformed multipart body: {error.detail}") from None
