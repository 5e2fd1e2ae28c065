"""The NumPy forward pass gives Keras' probabilities, for the committed model."""

from pathlib import Path

import keras
import numpy as np
import pytest

from app.data import MnistData, to_model_input
from app.inference import DenseClassifier, UnsupportedModelError


def test_numpy_forward_pass_matches_keras(committed_model_path: Path, mnist: MnistData) -> None:
    model = keras.saving.load_model(committed_model_path)
    inputs = to_model_input(mnist.x_test[:1000])
    expected = model.predict(inputs, verbose=0)
    actual = DenseClassifier.load(committed_model_path).predict(inputs)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    np.testing.assert_array_equal(actual.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(actual.sum(axis=1), 1.0, atol=1e-5)


def test_one_digit_at_a_time_matches_keras(committed_model_path: Path, mnist: MnistData) -> None:
    # One digit leaves most of its field blank, and only the inked pixels' weights are read;
    # a blank field and one full of noise take the other paths.
    model = keras.saving.load_model(committed_model_path)
    classifier = DenseClassifier.load(committed_model_path)
    noise = np.random.default_rng(0).random((1, 784), dtype=np.float32)
    singles = [to_model_input(mnist.x_test[i : i + 1]) for i in range(20)]
    for single in [*singles, np.zeros((1, 784), dtype=np.float32), noise]:
        expected = model.predict(single, verbose=0)
        np.testing.assert_allclose(classifier.predict(single), expected, atol=1e-5)


def test_single_input_gives_one_row(committed_model_path: Path, mnist: MnistData) -> None:
    classifier = DenseClassifier.load(committed_model_path)
    probabilities = classifier.predict(to_model_input(mnist.x_test[:1]))
    assert probabilities.shape == (1, 10)
    assert probabilities.argmax() == mnist.y_test[0]


def test_models_other_than_dense_stacks_are_refused() -> None:
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(4, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    with pytest.raises(UnsupportedModelError, match="Conv2D"):
        DenseClassifier.from_keras(model)
