"""POST /api/predict, /api/predict/batch and /api/predict/pixels."""

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from starlette.concurrency import run_in_threadpool

from app.mnist import IMAGE_SIDE, INPUT_SIZE
from app.serving.dependencies import ClassifierDep, SettingsDep
from app.serving.preprocessing import (
    Limits,
    PreprocessError,
    model_input_from_image,
    open_image,
    preprocess,
)
from app.serving.schemas import (
    BatchPrediction,
    BatchResult,
    ErrorResponse,
    ImageError,
    PixelsRequest,
    Prediction,
)
from app.serving.settings import Settings
from app.serving.uploads import RAW_IMAGE_BODY, ImageBytes

# Images up to this many pixels (the page's 560x560 canvas, a 640x640 one) are preprocessed
# on the event loop: a few milliseconds at most.
INLINE_MAX_PIXELS = 640 * 640

ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "Body or image too large"},
    415: {"model": ErrorResponse, "description": "Not a supported image"},
    422: {"model": ErrorResponse, "description": "Empty drawing or malformed request"},
}

router = APIRouter(prefix="/api/predict", tags=["prediction"], responses=ERRORS)
# Its own router: `create_app` gives JSON pixel arrays a body limit of their own.
pixels_router = APIRouter(prefix="/api/predict", tags=["prediction"], responses=ERRORS)

IncludeInput = Annotated[
    bool, Query(description="Also return the 28x28 input the model saw, as rows of floats.")
]


def image_limits(settings: Settings) -> Limits:
    return Limits(max_pixels=settings.max_image_pixels, max_side=settings.max_image_side)


def to_prediction(probabilities: np.ndarray, model_input: np.ndarray | None = None) -> Prediction:
    digit = int(probabilities.argmax())
    return Prediction(
        digit=digit,
        confidence=float(probabilities[digit]),
        probabilities=probabilities.tolist(),
        input=None
        if model_input is None
        else model_input.reshape(IMAGE_SIDE, IMAGE_SIDE).round(4).tolist(),
    )


@router.post(
    "",
    response_model_exclude_none=True,
    openapi_extra=RAW_IMAGE_BODY,
    # One image per request: a second is refused (400) rather than silently ignored.
    form_limits={"max_files": 1},
    summary="Classify one image of a handwritten digit",
)
async def predict_image(
    image: ImageBytes,
    settings: SettingsDep,
    classifier: ClassifierDep,
    include_input: IncludeInput = False,
) -> Prediction:
    """PNG, JPEG, WebP, GIF or BMP, any colours: dark on light, light on dark, transparent.

    `curl -F file=@digit.png http://localhost:8000/api/predict`, or the raw bytes with
    `Content-Type: image/png`.
    """
    opened = open_image(image, image_limits(settings))  # the header only
    if opened.width * opened.height <= INLINE_MAX_PIXELS:
        # A canvas-sized image takes a millisecond or two: less than a hop to a worker
        # thread costs, measured under load, so it is done here.
        model_input = model_input_from_image(opened, image)
    else:
        # A photo can take tens of milliseconds: off the event loop.
        model_input = await run_in_threadpool(model_input_from_image, opened, image)
    probabilities = classifier.predict(model_input[np.newaxis])[0]
    return to_prediction(probabilities, model_input if include_input else None)


def preprocess_all(images: list[bytes], limits: Limits) -> list[np.ndarray | PreprocessError]:
    """Each image's model input, or the reason it has none."""
    results: list[np.ndarray | PreprocessError] = []
    for data in images:
        try:
            results.append(preprocess(data, limits))
        except PreprocessError as error:
            results.append(error)
    return results


@router.post(
    "/batch",
    response_model_exclude_none=True,
    summary="Classify several images in one request",
)
async def predict_batch(
    files: Annotated[list[UploadFile], File(description="The images, in order.")],
    settings: SettingsDep,
    classifier: ClassifierDep,
    include_input: IncludeInput = False,
) -> BatchPrediction:
    """Multipart field `files`, repeated. One result per image, in order; an image that
    cannot be read gets its own error without failing the others."""
    if len(files) > settings.max_batch_images:
        raise HTTPException(413, f"at most {settings.max_batch_images} images per request")
    images = [await upload.read() for upload in files]
    inputs = await run_in_threadpool(preprocess_all, images, image_limits(settings))
    valid = [model_input for model_input in inputs if isinstance(model_input, np.ndarray)]
    # One forward pass for the whole batch.
    probabilities = iter(classifier.predict(np.stack(valid)) if valid else ())
    results = []
    for upload, model_input in zip(files, inputs, strict=True):
        if isinstance(model_input, PreprocessError):
            error = ImageError(status=model_input.status_code, detail=str(model_input))
            results.append(BatchResult(filename=upload.filename, error=error))
        else:
            prediction = to_prediction(next(probabilities), model_input if include_input else None)
            results.append(BatchResult(filename=upload.filename, prediction=prediction))
    return BatchPrediction(results=results)


def pixels_to_input(pixels: list[float] | list[list[float]]) -> np.ndarray:
    """Validate the count and shape of client-side pixels; (784,) float32."""
    nested = bool(pixels) and isinstance(pixels[0], list)
    count = sum(len(row) for row in pixels) if nested else len(pixels)
    if count > INPUT_SIZE:
        raise HTTPException(413, f"{count} pixels; the model takes {INPUT_SIZE} (28x28)")
    if nested and (len(pixels) != IMAGE_SIDE or any(len(row) != IMAGE_SIDE for row in pixels)):
        raise HTTPException(422, "pixels must be 784 numbers, or 28 rows of 28 numbers")
    if count != INPUT_SIZE:
        raise HTTPException(422, f"{count} pixels; the model takes {INPUT_SIZE} (28x28)")
    return np.asarray(pixels, dtype=np.float32).reshape(INPUT_SIZE)


@pixels_router.post(
    "/pixels",
    response_model_exclude_none=True,
    summary="Classify a 28x28 input prepared by the client",
)
async def predict_pixels(payload: PixelsRequest, classifier: ClassifierDep) -> Prediction:
    """For clients that preprocess themselves: MNIST form, white (1) digit on black (0)."""
    probabilities = classifier.predict(pixels_to_input(payload.pixels)[np.newaxis])[0]
    return to_prediction(probabilities)
