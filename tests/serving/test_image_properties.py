"""Property-based: whatever image arrives (any size from 1 pixel, mode, bit depth, format,
background, stroke width from 1 pixel, noise), preprocessing gives the network a valid input
or a clear client error, and the API answers 200 or a 4xx JSON error, never a 500."""

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from app.serving.preprocessing import PreprocessError, preprocess

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "CMYK"]
FORMATS = ["PNG", "JPEG", "WEBP", "GIF", "BMP"]
BACKGROUNDS = {"white": 255, "black": 0, "grey": 128, "transparent": None}


@st.composite
def images(draw: st.DrawFn) -> bytes:
    """An encoded image with 0 to 3 strokes on a background, maybe noisy."""
    width = draw(st.integers(1, 1000))
    height = draw(st.integers(1, 1000))
    background = draw(st.sampled_from(sorted(BACKGROUNDS)))
    paper = BACKGROUNDS[background]
    canvas = Image.new("LA", (width, height), (paper or 0, 0 if paper is None else 255))
    pen = ImageDraw.Draw(canvas)
    for _ in range(draw(st.integers(0, 3))):
        ink = draw(st.integers(0, 255))
        points = [(draw(st.integers(0, width)), draw(st.integers(0, height))) for _ in range(2)]
        pen.line(points, fill=(ink, 255), width=draw(st.integers(1, 40)))
    pixels = np.asarray(canvas).astype(np.int16)
    noise = draw(st.integers(0, 255))
    if noise:
        seed = draw(st.integers(0, 2**32 - 1))
        jitter = np.random.default_rng(seed).integers(-noise, noise + 1, (height, width))
        pixels[..., 0] += jitter.astype(np.int16)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "LA")

    mode = draw(st.sampled_from(MODES))
    image_format = draw(st.sampled_from(FORMATS))
    if mode == "I;16":
        # 16 bits per pixel, the grey levels spread over the whole range.
        image = Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)
    else:
        image = image.convert(mode)
    buffer = io.BytesIO()
    try:
        image.save(buffer, image_format)
    except (OSError, ValueError, KeyError):
        assume(False)  # a mode this format cannot hold
    return buffer.getvalue()


def assert_model_input_or_client_error(data: bytes) -> None:
    try:
        model_input = preprocess(data)
    except PreprocessError as error:
        assert error.status_code in (413, 415, 422)
        assert str(error)
        return
    assert model_input.shape == (784,)
    assert model_input.dtype == np.float32
    assert np.isfinite(model_input).all()
    assert model_input.min() >= 0.0 and model_input.max() <= 1.0


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images())
def test_preprocessing_gives_a_model_input_or_a_client_error(data: bytes) -> None:
    assert_model_input_or_client_error(data)


@pytest.fixture(scope="module")
def api(client: TestClient) -> TestClient:
    return client


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@pytest.mark.slow
@given(images(), st.sampled_from(["/api/predict", "/api/read"]), st.booleans())
def test_the_api_answers_200_or_a_client_error_in_json(
    api: TestClient, data: bytes, path: str, as_multipart: bool
) -> None:
    if as_multipart:
        response = api.post(path, files={"file": ("drawing", data, "image/png")})
    else:
        response = api.post(path, content=data, headers={"Content-Type": "image/png"})
    assert response.status_code in (200, 413, 415, 422), response.text
    body = response.json()
    if response.status_code != 200:
        assert set(body) <= {"detail", "reason"} and body["detail"]
        return
    for answer in body["digits"] if path == "/api/read" else [body]:
        assert 0 <= answer["digit"] <= 9
        assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-4)
