"""Whole numbers written as people write them, and the measure of reading them."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.serving.model_file import load_calibrated_classifier, load_classifier, model_card_path
from app.training.data import MnistData
from app.training.evaluate import evaluate_numbers
from app.training.number_evaluation import measure_numbers, number_jobs
from app.training.numbers import GAPS, MAX_CANVAS, Spacing, random_number_style, write_number
from tests.conftest import run_module


@pytest.mark.parametrize("spacing", ["apart", "tight", "overlapping"])
def test_written_numbers_keep_their_digits_spaced_and_in_order(
    mnist: MnistData, spacing: Spacing
) -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        count = int(rng.integers(2, 7))
        style = random_number_style(rng, count, spacing)
        written = write_number(mnist.x_test[:count], style)
        image = Image.open(io.BytesIO(written.image))
        assert image.width <= MAX_CANVAS[0] and image.height <= MAX_CANVAS[1]
        lefts = [left for left, _, _, _ in written.boxes]
        rights = [left + width for left, _, width, _ in written.boxes]
        assert lefts == sorted(lefts) and rights == sorted(rights)
        assert rights[-1] <= image.width and all(top >= 0 for _, top, _, _ in written.boxes)
        gaps = [left - right for right, left in zip(rights, lefts[1:], strict=False)]
        widths = [width for _, _, width, _ in written.boxes[1:]]
        shares = [gap / width for gap, width in zip(gaps, widths, strict=True)]
        # Gaps are rounded to whole pixels, and shrink with the digits on a full canvas.
        low, high = GAPS[spacing]
        assert low - 0.05 <= min(shares) and max(shares) <= high + 0.05


def test_number_sets_are_seeded(mnist: MnistData) -> None:
    first = number_jobs(mnist.x_test, mnist.y_test, 50, "apart")
    again = number_jobs(mnist.x_test, mnist.y_test, 50, "apart")
    assert [job.labels for job in first] == [job.labels for job in again]
    assert {len(job.labels) for job in first} == {2, 3, 4, 5, 6}
    tight = number_jobs(mnist.x_test, mnist.y_test, 50, "tight")
    overlapping = number_jobs(mnist.x_test, mnist.y_test, 50, "overlapping")
    assert [job.labels for job in tight] != [job.labels for job in first]
    assert [job.labels for job in overlapping] != [job.labels for job in tight]


def test_the_served_model_reads_most_written_numbers(
    mnist: MnistData, committed_model_path: Path
) -> None:
    jobs = number_jobs(mnist.x_test, mnist.y_test, 60, "apart")
    measure = measure_numbers(load_calibrated_classifier(committed_model_path), jobs, workers=1)
    assert measure.numbers == 60
    assert measure.count_accuracy >= 0.9
    assert measure.digit_accuracy >= 0.95
    assert measure.number_accuracy >= 0.8


@pytest.mark.training
def test_numbers_are_read_with_the_probabilities_the_server_gives(
    mnist: MnistData, model_copy: Path
) -> None:
    # A temperature so high that every probability is near 0.1: two digits' product never
    # beats one digit's, and a wide piece is always read as one, as the server would.
    card = json.loads(model_card_path(model_copy).read_text())
    card["calibration"]["temperature"] = 50.0
    model_card_path(model_copy).write_text(json.dumps(card))
    # Some of these are read right only with a piece read as two digits (two for the served
    # model): as the server reads them, they lose a digit.
    jobs = number_jobs(mnist.x_test, mnist.y_test, 80, "overlapping")
    served = measure_numbers(load_calibrated_classifier(model_copy), jobs, workers=1)
    as_trained = measure_numbers(load_classifier(model_copy), jobs, workers=1)
    assert served.count_accuracy < as_trained.count_accuracy

    figures = evaluate_numbers(model_copy, mnist, 80, workers=1)
    assert figures["overlapping_numbers_count_accuracy"] == served.count_accuracy


@pytest.mark.training
def test_evaluate_numbers_writes_the_card(model_copy: Path, mnist_dir: Path) -> None:
    arguments = ["--model", str(model_copy), "--data-dir", str(mnist_dir), "--numbers"]
    result = run_module("app.evaluate", *arguments, "--number-count", "40", "--workers", "1",
                        timeout=300, check=True)  # fmt: skip
    evaluation = json.loads(model_card_path(model_copy).read_text())["evaluation"]
    assert "Numbers: number accuracy" in result.stdout
    assert "Tight numbers: number accuracy" in result.stdout
    assert "Overlapping numbers: number accuracy" in result.stdout
    assert evaluation["numbers_count"] == evaluation["tight_numbers_count"] == 40
    assert evaluation["overlapping_numbers_count"] == 40
    assert 0.7 <= evaluation["numbers_number_accuracy"] <= 1
    # The single-digit figures already in the card stay.
    assert "canvas_accuracy" in evaluation
