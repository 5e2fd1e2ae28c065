"""The evaluation: both measures, reproducible, and written into the model card."""

import json
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from app.mnist import DIGIT_BOX
from app.serving.model_file import model_card_path
from app.training.data import MnistData
from app.training.drawn_sets import MAX_ROTATION, canvas_styles
from app.training.evaluate import CANVAS_SEED, Measure, style_set
from app.training.styles import STYLES
from tests.conftest import run_module


def test_measure_counts_a_confusion_matrix() -> None:
    labels = np.array([0, 0, 1, 1, 1, 9])
    predicted = np.array([0, 1, 1, 1, 7, 9])
    measure = Measure.of(predicted, labels)
    assert measure.accuracy == round(4 / 6, 4)
    assert measure.confusion[0][:2] == [1, 1]
    assert measure.confusion[1][1] == 2
    assert measure.confusion[1][7] == 1
    assert measure.per_digit[:2] == [0.5, round(2 / 3, 4)]
    assert measure.per_digit[9] == 1.0
    assert measure.per_digit[5] == 0.0  # no 5 among the labels


def test_the_canvas_set_is_fixed_and_varied() -> None:
    styles = canvas_styles(2000, CANVAS_SEED)
    assert styles == canvas_styles(2000, CANVAS_SEED)
    assert {style.background for style in styles} == {"white", "black", "transparent"}
    pens = [style for style in styles if style.pen_width is not None]
    assert 0.4 < len(pens) / len(styles) < 0.6
    assert max(abs(style.rotation) for style in styles) > 0.9 * MAX_ROTATION
    assert max(abs(style.slant) for style in styles) > 0.25
    assert {style.image_format for style in styles} == {"PNG", "JPEG"}


def test_the_style_set_is_fixed_and_has_every_style_alike(mnist: MnistData) -> None:
    styled = style_set(mnist.x_test, mnist.y_test, 12)
    again = style_set(mnist.x_test, mnist.y_test, 12)
    np.testing.assert_array_equal(styled.digits, again.digits)
    assert styled.drawings == again.drawings
    assert Counter(styled.styles) == dict.fromkeys(STYLES, 12)
    for name, label, drawing in zip(styled.styles, styled.labels, styled.drawings, strict=True):
        style = STYLES[name]
        assert style.digit in (None, label)
        if style.pen_widths is not None:  # drawn with that pen, in MNIST pixels
            low, high = style.pen_widths
            assert low <= drawing.pen_width * DIGIT_BOX / drawing.digit_height <= high
    # Drawn as the canvas-realistic set is: rotated, slanted, in both polarities.
    assert max(abs(drawing.rotation) for drawing in styled.drawings) > 0.8 * MAX_ROTATION
    assert {drawing.background for drawing in styled.drawings} == {"white", "black", "transparent"}
    # A pen style draws any digit.
    markers = styled.labels[np.array(styled.styles) == "marker"]
    assert len(set(markers.tolist())) >= 5


def run_evaluation(*arguments: str) -> subprocess.CompletedProcess:
    return run_module("app.evaluate", *arguments, timeout=600, check=True)


@pytest.mark.training
def test_evaluation_reports_and_writes_the_card(
    committed_model_path: Path, model_copy: Path, mnist_dir: Path
) -> None:
    committed_card = json.loads(model_card_path(committed_model_path).read_text())

    arguments = ["--model", str(model_copy), "--data-dir", str(mnist_dir), "--samples", "300"]
    arguments += ["--number-count", "20"]
    result = run_evaluation(*arguments, "--style-samples", "6", "--workers", "1")
    card = json.loads(model_card_path(model_copy).read_text())

    assert "Raw MNIST test set: accuracy" in result.stdout
    assert "Canvas-realistic: accuracy" in result.stdout
    assert "Style set: accuracy" in result.stdout
    evaluation = card["evaluation"]
    assert evaluation["canvas_samples"] == 300
    assert sum(map(sum, evaluation["canvas_confusion"])) == 300
    assert sum(map(sum, evaluation["test_confusion"])) == 10000
    # Each style's accuracy is printed and recorded, over the same number of drawings.
    assert evaluation["style_samples"] == 6 * len(STYLES)
    assert sum(map(sum, evaluation["style_confusion"])) == 6 * len(STYLES)
    assert list(evaluation["style_per_style"]) == list(STYLES)
    for name, figures in evaluation["style_per_style"].items():
        assert figures["samples"] == 6
        assert f"{name} " in result.stdout
        assert 0.0 <= figures["accuracy"] <= 1.0
    assert len(evaluation["style_per_digit"]) == 10
    assert evaluation["test_accuracy"] == committed_card["evaluation"]["test_accuracy"]
    assert evaluation["canvas_accuracy"] > 0.95
    # Calibration: the card's temperature applied, the error before and after recorded.
    assert evaluation["temperature"] == committed_card["calibration"]["temperature"]
    assert "calibration (temperature" in result.stdout
    assert 0.0 <= evaluation["canvas_ece"] <= 1.0
    assert evaluation["canvas_ece"] != evaluation["canvas_ece_uncalibrated"]
    assert evaluation["numbers_count"] == 20
    assert card["training"] == committed_card["training"]  # the rest of the card is kept

    # Reproducible, also with the drawing spread over processes; --no-write leaves the card.
    arguments += ["--style-samples", "6"]
    run_evaluation(*arguments, "--workers", "2", "--no-write")
    assert json.loads(model_card_path(model_copy).read_text()) == card
    again = run_evaluation(*arguments, "--workers", "2").stdout
    assert again.split("canvas-realistic set")[0] == result.stdout.split("canvas-realistic set")[0]
