"""Temperature scaling and the expected calibration error, on cases whose answer is known."""

import numpy as np
import pytest

from app.serving.inference import softmax
from app.training.calibration import expected_calibration_error, fit_temperature


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 3.0])
def test_the_fit_finds_the_temperature_the_labels_were_drawn_with(true_temperature: float):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (20_000, 10))
    probabilities = softmax(logits / true_temperature)
    labels = (probabilities.cumsum(axis=1) > rng.random((len(logits), 1))).argmax(axis=1)
    assert fit_temperature(logits, labels) == pytest.approx(true_temperature, rel=0.05)


def test_calibration_error_by_hand() -> None:
    # Two answers at 0.9 confidence, one right; two at 0.6, both right.
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(
        0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    )


def test_an_over_confident_model_is_calibrated_by_its_fitted_temperature() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (20_000, 10))
    labels = (softmax(logits).cumsum(axis=1) > rng.random((len(logits), 1))).argmax(axis=1)
    over_confident = 4 * logits  # what the labels were drawn from, made sharper
    before = expected_calibration_error(softmax(over_confident), labels)
    temperature = fit_temperature(over_confident, labels)
    after = expected_calibration_error(softmax(over_confident / temperature), labels)
    assert before > 0.2 and after < 0.02
    # The answers themselves do not change.
    assert (softmax(over_confident / temperature).argmax(axis=1) == logits.argmax(axis=1)).all()
