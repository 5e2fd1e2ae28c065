"""Request and response bodies of the REST API."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
# Strict: numbers only (integers included), not "0.5" or true.
Pixel = Annotated[float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False)]


Grid = list[list[float]]  # 28 rows of 28, as the model's input is laid out


class PixelEvidence(BaseModel):
    digit: int
    pixels: Annotated[
        Grid,
        Field(
            description="Each pixel's term of this digit's logit: x_i * sum_j W1[i, j] * "
            "W2[j, digit] over the active hidden units j. Positive: argued for the digit."
        ),
    ]
    hidden_bias: Annotated[
        float, Field(description="sum_j b1[j] * W2[j, digit] over the active hidden units.")
    ]
    output_bias: Annotated[float, Field(description="b2[digit].")]


class HiddenUnit(BaseModel):
    unit: Annotated[int, Field(description="Its index among the hidden units.")]
    activation: Annotated[float, Field(description="relu(x . W1[:, unit] + b1[unit]).")]
    contribution: Annotated[
        float, Field(description="activation * W2[unit, digit]: its part of the logit.")
    ]
    weights: Annotated[Grid, Field(description="W1[:, unit]: what the unit looks for.")]


class Explanation(BaseModel):
    """The forward pass of this input, with the real numbers of each step."""

    hidden: Annotated[
        list[float], Field(description="The hidden layer after relu: relu(x . W1 + b1).")
    ]
    active_units: Annotated[int, Field(description="How many hidden units are above 0.")]
    logits: Annotated[list[float], Field(description="h . W2 + b2, before softmax.")]
    temperature: Annotated[
        float,
        Field(description="The probabilities are softmax(logits / temperature): calibrated."),
    ]
    evidence: Annotated[
        list[PixelEvidence],
        Field(
            description="For the predicted digit and the runner-up: pixel terms and bias "
            "terms that add up to the digit's logit."
        ),
    ]
    units: Annotated[
        list[HiddenUnit],
        Field(description="The hidden units that added most to the predicted digit's logit."),
    ]


class Prediction(BaseModel):
    digit: Annotated[int, Field(ge=0, le=9, description="The most probable digit.")]
    confidence: Annotated[Probability, Field(description="The probability of that digit.")]
    probabilities: Annotated[
        list[Probability],
        Field(min_length=10, max_length=10, description="Softmax output; index = digit."),
    ]
    input: Annotated[
        list[list[float]] | None,
        Field(description="The 28x28 input the model saw (with include_input=true)."),
    ] = None
    explanation: Annotated[
        Explanation | None,
        Field(description="How the network reached the answer (with explain=true)."),
    ] = None
    digits_found: Annotated[
        int | None,
        Field(
            ge=2,
            description="When the image seems to hold several digits, how many: this answer "
            "reads it as one. POST /api/read reads each.",
        ),
    ] = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "digit": 7,
                    "confidence": 0.9991,
                    "probabilities": [
                        *(0.0, 0.0001, 0.0004, 0.0002, 0.0, 0.0),
                        *(0.0, 0.9991, 0.0, 0.0002),
                    ],
                }
            ]
        }
    )


# Why an image was refused, in a word for programs: "empty_drawing" (nothing drawn yet) asks
# for more strokes, the others for another image (or, busy, a retry).
RefusalReason = Annotated[
    Literal[
        "empty_drawing",
        "costly_decoding",
        "unreadable_image",
        "unsupported_image",
        "image_too_large",
        "busy",
    ],
    Field(description="Why the image was refused, for programs."),
]


class ImageError(BaseModel):
    status: Annotated[int, Field(description="The HTTP status this image alone would get.")]
    detail: str
    reason: RefusalReason


class BatchResult(BaseModel):
    filename: str | None = None
    prediction: Prediction | None = None
    error: ImageError | None = None


class BatchPrediction(BaseModel):
    results: Annotated[list[BatchResult], Field(description="One per image, in request order.")]


def pixels_layout(value: object) -> str:
    """Which form the client sent, so that errors speak of that form only."""
    is_rows = isinstance(value, list) and bool(value) and isinstance(value[0], list)
    return "rows" if is_rows else "flat"


class PixelsRequest(BaseModel):
    pixels: Annotated[
        Annotated[list[Pixel], Tag("flat")] | Annotated[list[list[Pixel]], Tag("rows")],
        Discriminator(pixels_layout),
        Field(description="784 values in [0, 1] (white digit on black), flat or as 28 rows."),
    ]

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"pixels": [0.0] * 300 + [1.0] * 184 + [0.0] * 300}]}
    )


class ErrorResponse(BaseModel):
    detail: str
    reason: RefusalReason | None = None  # given when an image was refused


class Status(BaseModel):
    status: str


class ModelCard(BaseModel):
    """What the training module recorded about the served model (more fields may follow)."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    file: dict[str, Any] | None = Field(None, description="File name and SHA-256.")
    architecture: dict[str, Any] | None = Field(None, description="Layers and parameters.")
    training: dict[str, Any] | None = Field(None, description="Recipe and hyper-parameters.")
    data: dict[str, Any] | None = Field(None, description="Training data and its hashes.")
    evaluation: dict[str, Any] | None = Field(
        None, description="Raw MNIST and canvas-realistic accuracy, with confusion matrices."
    )
    versions: dict[str, str] | None = None
    created: str | None = None


class ReadDigitResult(Prediction):
    box: Annotated[
        list[int],
        Field(
            min_length=4,
            max_length=4,
            description="Where the digit is: x, y, width, height in the image's pixels.",
        ),
    ]


class NumberReading(BaseModel):
    number: Annotated[
        str, Field(description="The digits read, left to right; line by line, top to bottom.")
    ]
    digits: Annotated[
        list[ReadDigitResult], Field(description="Each digit, in the order of the number.")
    ]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "42",
                    "digits": [
                        {
                            "digit": 4,
                            "confidence": 0.998,
                            "probabilities": [0.0] * 4 + [0.998] + [0.0002] * 5,
                            "box": [40, 60, 110, 160],
                        },
                        {
                            "digit": 2,
                            "confidence": 0.991,
                            "probabilities": [0.0, 0.001, 0.991] + [0.001] * 7,
                            "box": [190, 58, 105, 158],
                        },
                    ],
                }
            ]
        }
    )


class ServedModel(BaseModel):
    name: Annotated[str, Field(description="Its name in ?model=.")]
    description: str
    card: ModelCard


class CorrectionReceipt(BaseModel):
    id: Annotated[int, Field(description="The stored correction's id.")]


class ServedModelOnCorrections(BaseModel):
    sha256: Annotated[str, Field(description="The served model file's SHA-256 (its card's).")]
    corrections: Annotated[int, Field(description="Corrections of drawings it answered.")]
    right: Annotated[int, Field(description="Of those, how many it had right.")]
    accuracy: Annotated[float | None, Field(description="right / corrections.")]


class CorrectionStatistics(BaseModel):
    total: int
    per_label: Annotated[list[int], Field(description="Corrections saying each digit, 0 to 9.")]
    served_model: ServedModelOnCorrections
