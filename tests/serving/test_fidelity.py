"""Preprocessing fidelity: real MNIST digits drawn on canvases as browsers export them, sent
through the API, are recognised as well as the raw digits are."""

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.serving.model_file import load_classifier
from app.training.data import MnistData, to_model_input
from app.training.drawings import DrawingStyle, random_style, render_drawing

# An evaluation of the model and the preprocessing together, on 1,000 rendered drawings.
pytestmark = pytest.mark.training

SAMPLES = 1000


@pytest.fixture(scope="module")
def styles() -> list[DrawingStyle]:
    """Seeded: sizes, positions, three canvas sizes, strokes from a third of a pixel thinner
    to a pixel bolder per edge, both polarities, transparent backgrounds, PNG and JPEG."""
    rng = np.random.default_rng(0)
    return [random_style(rng, pen_share=0.0) for _ in range(SAMPLES)]


def test_the_drawings_cover_what_browsers_send(styles: list[DrawingStyle]) -> None:
    assert {style.canvas_size for style in styles} == {(280, 280), (400, 400), (640, 480)}
    assert {(style.ink, style.background) for style in styles} == {
        ("black", "white"),
        ("white", "black"),
        ("black", "transparent"),
        ("white", "transparent"),
    }
    assert {style.image_format for style in styles} == {"PNG", "JPEG"}
    assert min(style.stroke_change for style in styles) < -0.2
    assert max(style.stroke_change for style in styles) > 0.8
    assert min(style.digit_height / min(style.canvas_size) for style in styles) < 0.35
    off_centre = [style for style in styles if abs(style.centre[0] - 0.5) > 0.2]
    assert len(off_centre) > 50


def test_drawn_digits_through_the_api_are_as_accurate_as_raw_digits(
    client: TestClient,
    mnist: MnistData,
    styles: list[DrawingStyle],
    committed_model_path: Path,
) -> None:
    digits, labels = mnist.x_test[:SAMPLES], mnist.y_test[:SAMPLES]
    raw_predictions = load_classifier(committed_model_path).predict(to_model_input(digits))
    raw_accuracy = float(np.mean(raw_predictions.argmax(axis=1) == labels))

    predicted = []
    for index, (digit, style) in enumerate(zip(digits, styles, strict=True)):
        image = render_drawing(digit, style)
        media_type = f"image/{style.image_format.lower()}"
        # Half as multipart uploads (curl -F), half as raw bodies (fetch with a Blob).
        if index % 2:
            response = client.post("/api/predict", files={"file": ("d", image, media_type)})
        else:
            response = client.post(
                "/api/predict", content=image, headers={"Content-Type": media_type}
            )
        assert response.status_code == 200, response.text
        predicted.append(response.json()["digit"])
    drawn_accuracy = float(np.mean(np.array(predicted) == labels))

    print(f"raw {raw_accuracy:.3f}, drawn through the API {drawn_accuracy:.3f}")
    assert drawn_accuracy >= raw_accuracy - 0.01
