"""The evaluation: both measures, reproducible, and written into the model card."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from app.serving.model_file import model_card_path
from app.training.evaluate import MAX_ROTATION, Measure, canvas_styles
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
    styles = canvas_styles(2000)
    assert styles == canvas_styles(2000)
    assert {style.background for style in styles} == {"white", "black", "transparent"}
    pens = [style for style in styles if style.pen_width is not None]
    assert 0.4 < len(pens) / len(styles) < 0.6
    assert max(abs(style.rotation) for style in styles) > 0.9 * MAX_ROTATION
    assert max(abs(style.slant) for style in styles) > 0.25
    assert {style.image_format for style in styles} == {"PNG", "JPEG"}


def run_evaluation(*arguments: str) -> subprocess.CompletedProcess:
    return run_module("app.evaluate", *arguments, timeout=600, check=True)


@pytest.mark.training
def test_evaluation_reports_and_writes_the_card(
    committed_model_path: Path, mnist_dir: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model.keras"
    shutil.copy(committed_model_path, model)
    shutil.copy(model_card_path(committed_model_path), model_card_path(model))
    committed_card = json.loads(model_card_path(committed_model_path).read_text())

    arguments = ["--model", str(model), "--data-dir", str(mnist_dir), "--samples", "300"]
    result = run_evaluation(*arguments, "--workers", "1")
    card = json.loads(model_card_path(model).read_text())

    assert "Raw MNIST test set: accuracy" in result.stdout
    assert "Canvas-realistic: accuracy" in result.stdout
    evaluation = card["evaluation"]
    assert evaluation["canvas_samples"] == 300
    assert sum(map(sum, evaluation["canvas_confusion"])) == 300
    assert sum(map(sum, evaluation["test_confusion"])) == 10000
    assert evaluation["test_accuracy"] == committed_card["evaluation"]["test_accuracy"]
    assert evaluation["canvas_accuracy"] > 0.95
    assert card["training"] == committed_card["training"]  # the rest of the card is kept

    # Reproducible, also with the drawing spread over processes; --no-write leaves the card.
    run_evaluation(*arguments, "--workers", "2", "--no-write")
    assert json.loads(model_card_path(model).read_text()) == card
    again = run_evaluation(*arguments, "--workers", "2").stdout
    assert again.split("canvas-realistic set")[0] == result.stdout.split("canvas-realistic set")[0]
