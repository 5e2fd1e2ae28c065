"""The image a request carries: multipart field `file`, or the raw body with an image/* type."""

from typing import Annotated, Any

from fastapi import Depends, File, HTTPException, Request, UploadFile

SUPPORTED_BODY = (
    "send the image as multipart/form-data field 'file', or as the raw body with an "
    "image/* Content-Type"
)
# The multipart form is described by the signature below; this adds the raw-body alternative.
RAW_IMAGE_BODY: dict[str, Any] = {
    "requestBody": {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}
}


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def uploaded_image(
    request: Request,
    file: Annotated[
        UploadFile | None,
        File(description="The image: PNG, JPEG, WebP, GIF or BMP, any colours."),
    ] = None,
) -> bytes:
    """The image's bytes, from whichever of the two forms the client chose."""
    if file is not None:
        return await file.read()
    kind = media_type(request)
    if kind.startswith("image/"):
        return await request.body()
    if kind == "multipart/form-data":
        raise HTTPException(422, "multipart field 'file' with an image is missing")
    raise HTTPException(415, f"unsupported Content-Type {kind or '(none)'!r}: {SUPPORTED_BODY}")


ImageBytes = Annotated[bytes, Depends(uploaded_image)]
