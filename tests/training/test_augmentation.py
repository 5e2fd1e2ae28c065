"""Augmentation: varied, seeded, and still MNIST-normalised digits of the same class."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.serving.model_file import load_classifier
from app.training.augmentation import Augmentation, augment_batch
from app.training.data import MnistData

NO_CHANGE = Augmentation(
    max_rotation=0,
    max_shear=0,
    scale_jitter=0,
    max_shift=0,
    elastic_pixels=0,
    max_stroke_change=0,
)


def centres_and_extents(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images = inputs.reshape(-1, 28, 28)
    rows, columns = np.indices((28, 28))
    mass = images.sum(axis=(1, 2))
    centres = np.stack(
        [(images * rows).sum(axis=(1, 2)) / mass, (images * columns).sum(axis=(1, 2)) / mass], 1
    )
    strokes = images > 0.5
    extents = []
    for axis in (2, 1):
        present = strokes.any(axis=axis)
        first = np.where(present, np.arange(28), 28).min(axis=1)
        last = np.where(present, np.arange(28), -1).max(axis=1)
        extents.append(last - first + 1)
    return centres, np.maximum(*extents)


def test_output_is_model_input(mnist: MnistData) -> None:
    batch = augment_batch(mnist.x_train[:128], np.random.default_rng(0), Augmentation())
    assert batch.shape == (128, 784)
    assert batch.dtype == np.float32
    assert batch.min() >= 0.0
    assert batch.max() <= 1.0


def test_seeded_and_varied(mnist: MnistData) -> None:
    images = mnist.x_train[:64]
    first = augment_batch(images, np.random.default_rng(1), Augmentation())
    again = augment_batch(images, np.random.default_rng(1), Augmentation())
    other = augment_batch(images, np.random.default_rng(2), Augmentation())
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 0.05


def test_no_change_leaves_digits_as_they_are(mnist: MnistData) -> None:
    images = mnist.x_train[:200]
    unchanged = augment_batch(images, np.random.default_rng(0), NO_CHANGE)
    # Only re-centred by a fraction of a pixel: one bilinear resampling's worth of change.
    assert np.abs(unchanged - images.reshape(200, 784) / 255.0).mean() < 0.035


def test_digits_stay_in_the_form_the_serving_pipeline_gives(mnist: MnistData) -> None:
    # Rotated and slanted, but re-fitted to the 20-pixel box and centred as drawings are.
    inputs = augment_batch(mnist.x_train[:2000], np.random.default_rng(0), Augmentation())
    centres, extents = centres_and_extents(inputs)
    assert np.abs(centres.mean(axis=0) - 14.0).max() < 0.1
    assert np.abs(centres - 14.0).std() < 0.6  # the elastic wobble moves it a little
    assert 19.0 < extents.mean() < 20.5


def test_augmented_digits_are_still_their_digit(
    mnist: MnistData, committed_model_path: Path
) -> None:
    inputs = augment_batch(mnist.x_test[:2000], np.random.default_rng(0), Augmentation())
    predicted = load_classifier(committed_model_path).predict(inputs).argmax(axis=1)
    # Rotated, slanted, distorted and re-stroked, yet the served model still reads them.
    assert np.mean(predicted == mnist.y_test[:2000]) > 0.95


@pytest.mark.parametrize(
    "field", ["max_rotation", "max_shear", "elastic_pixels", "max_stroke_change"]
)
def test_each_change_changes_the_digits(mnist: MnistData, field: str) -> None:
    only = replace(NO_CHANGE, **{field: getattr(Augmentation(), field)})
    images = mnist.x_train[:100]
    changed = augment_batch(images, np.random.default_rng(0), only)
    assert (
        np.abs(changed - augment_batch(images, np.random.default_rng(0), NO_CHANGE)).mean() > 0.02
    )
