"""POST /api/read: a whole number, digit by digit."""

from functools import partial

from fastapi import APIRouter

from app.serving.dependencies import ClassifierDep, IsolationDep, SettingsDep
from app.serving.metrics import preprocessed
from app.serving.routes.predict import ERRORS, IncludeInput, forward, image_limits, to_prediction
from app.serving.schemas import NumberReading, ReadDigitResult
from app.serving.segmentation import chosen_digits, read_digits
from app.serving.uploads import RAW_IMAGE_BODY, ImageBytes

router = APIRouter(tags=["prediction"], responses=ERRORS)


@router.post(
    "/api/read",
    response_model_exclude_none=True,
    openapi_extra=RAW_IMAGE_BODY,
    form_limits={"max_files": 1},
    summary="Read a whole number written in one image",
)
async def read_number(
    image: ImageBytes,
    settings: SettingsDep,
    classifier: ClassifierDep,
    isolation: IsolationDep,
    include_input: IncludeInput = False,
) -> NumberReading:
    """The same image forms and limits as `/api/predict`. The digits are found left to
    right, and each goes through the preprocessing and the network on its own."""
    found = await preprocessed(isolation, read_digits, image, image_limits(settings))
    # One forward pass for all the digits (and the two a wide one may be).
    results = [
        ReadDigitResult(
            **to_prediction(
                probabilities, digit.model_input if include_input else None
            ).model_dump(),
            box=list(digit.box),
        )
        for digit, probabilities in chosen_digits(found, partial(forward, classifier))
    ]
    return NumberReading(number="".join(str(result.digit) for result in results), digits=results)
