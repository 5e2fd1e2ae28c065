"""POST /api/predict, /api/predict/batch and /api/predict/pixels."""

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, HTTPException, Query, UploadFile

from app.mnist import IMAGE_SIDE, INPUT_SIZE
from app.serving.dependencies import ClassifierDep, IsolationDep, SettingsDep
from app.serving.image_files import png_header
from app.serving.inference import DenseClassifier
from app.serving.isolation import IsolatedPreprocessing, ServiceBusyError
from app.serving.metrics import (
    INFERENCE_SECONDS,
    PREPROCESSED_INLINE,
    PREPROCESSED_ISOLATED,
    count_prediction,
    count_rejection,
)
from app.serving.preprocessing import Limits, PreprocessError, check_format, preprocess
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

# Canvas exports up to this many pixels (the page's 560x560 canvas, a 640x640 one) are
# preprocessed on the event loop: a millisecond or two, less than handing them elsewhere.
INLINE_MAX_PIXELS = 640 * 640

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Unparsable body (multipart or JSON)"},
    408: {"model": ErrorResponse, "description": "The request did not arrive in time"},
    413: {"model": ErrorResponse, "description": "Body, image or image count too large"},
    415: {"model": ErrorResponse, "description": "Not a supported image"},
    422: {
        "model": ErrorResponse,
        "description": "Empty drawing, an image too costly to decode, or a malformed request",
    },
    503: {"model": ErrorResponse, "description": "Busy or not ready: retry after a moment"},
}

router = APIRouter(prefix="/api/predict", tags=["prediction"], responses=ERRORS)
# Its own router: `create_app` gives JSON pixel arrays a body limit of their own.
pixels_router = APIRouter(prefix="/api/predict", tags=["prediction"], responses=ERRORS)

IncludeInput = Annotated[
    bool, Query(description="Also return the 28x28 input the model saw, as rows of floats.")
]


def image_limits(settings: Settings) -> Limits:
    return Limits(max_pixels=settings.max_image_pixels, max_side=settings.max_image_side)


def forward(classifier: DenseClassifier, inputs: np.ndarray) -> np.ndarray:
    """The classifier's probabilities for (n, 784) inputs, timed."""
    with INFERENCE_SECONDS.time():
        return classifier.predict(inputs)


def to_prediction(probabilities: np.ndarray, model_input: np.ndarray | None = None) -> Prediction:
    digit = int(probabilities.argmax())
    count_prediction(digit)
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
    isolation: IsolationDep,
    include_input: IncludeInput = False,
) -> Prediction:
    """PNG, JPEG, WebP, GIF or BMP, any colours: dark on light, light on dark, transparent.

    `curl -F file=@digit.png http://localhost:8000/api/predict`, or the raw bytes with
    `Content-Type: image/png`.
    """
    model_input = await preprocess_image(image, image_limits(settings), isolation)
    probabilities = forward(classifier, model_input[np.newaxis])[0]
    return to_prediction(probabilities, model_input if include_input else None)


async def preprocess_image(
    data: bytes, limits: Limits, isolation: IsolatedPreprocessing
) -> np.ndarray:
    """The model input of an image: a canvas export here, anything else in an isolated
    process, where its decoding cannot hold the event loop or the server's memory."""
    check_format(data)  # bytes of no image format are refused here, without a process
    header = png_header(data)
    if header is not None and header.is_canvas_export(INLINE_MAX_PIXELS):
        with PREPROCESSED_INLINE.time():
            return preprocess(data, limits)
    with PREPROCESSED_ISOLATED.time():
        return await isolation.preprocess(data, limits)


@router.post(
    "/batch",
    response_model_exclude_none=True,
    summary="Classify several images in one request",
)
async def predict_batch(
    files: Annotated[list[UploadFile], File(description="The images, in order.")],
    settings: SettingsDep,
    classifier: ClassifierDep,
    isolation: IsolationDep,
    include_input: IncludeInput = False,
) -> BatchPrediction:
    """Multipart field `files`, repeated. One result per image, in order; an image that
    cannot be read gets its own error without failing the others."""
    if len(files) > settings.max_batch_images:
        raise HTTPException(413, f"at most {settings.max_batch_images} images per request")
    limits = image_limits(settings)
    inputs: list[np.ndarray | ImageError] = []
    for upload in files:
        # One at a time: a batch takes one decoding slot, not all of them.
        try:
            inputs.append(await preprocess_image(await upload.read(), limits, isolation))
        except PreprocessError as error:
            # Only the status and message are kept: the exception's traceback would keep
            # the decoded arrays of its frames alive as long as the results.
            count_rejection(error.status_code, error.reason)
            inputs.append(ImageError(status=error.status_code, detail=str(error)))
        except ServiceBusyError as busy:
            count_rejection(503, busy.reason)
            inputs.append(ImageError(status=503, detail=str(busy)))
    valid = [model_input for model_input in inputs if isinstance(model_input, np.ndarray)]
    # One forward pass for the whole batch.
    probabilities = iter(forward(classifier, np.stack(valid)) if valid else ())
    results = []
    for upload, model_input in zip(files, inputs, strict=True):
        if isinstance(model_input, ImageError):
            results.append(BatchResult(filename=upload.filename, error=model_input))
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
    probabilities = forward(classifier, pixels_to_input(payload.pixels)[np.newaxis])[0]
    return to_prediction(probabilities)
