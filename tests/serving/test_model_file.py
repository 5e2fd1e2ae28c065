"""The `.keras` model read without TensorFlow: Keras' own probabilities, and anything but the
expected Dense network refused with a message that says why."""

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.serving.model_file import ModelFileError, load_classifier
from app.training.data import MnistData, to_model_input

keras_installed = pytest.mark.training  # Keras comes with the training requirements


@keras_installed
@pytest.mark.parametrize("model_name", ["committed_model_path", "committed_seed_model_path"])
def test_probabilities_equal_keras_predict(
    model_name: str, request: pytest.FixtureRequest, mnist: MnistData
) -> None:
    import keras  # noqa: PLC0415 - only the tests that compare with Keras import it

    path = request.getfixturevalue(model_name)
    inputs = to_model_input(mnist.x_test[:1000])
    expected = keras.saving.load_model(path).predict(inputs, verbose=0)
    actual = load_classifier(path).predict(inputs)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    np.testing.assert_array_equal(actual.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(actual.sum(axis=1), 1.0, atol=1e-5)


@keras_installed
def test_one_digit_at_a_time_equals_keras(committed_model_path: Path, mnist: MnistData) -> None:
    # One digit leaves most of its field blank, and only the inked pixels' weights are read;
    # a blank field and one full of noise take the other paths.
    import keras  # noqa: PLC0415

    model = keras.saving.load_model(committed_model_path)
    classifier = load_classifier(committed_model_path)
    noise = np.random.default_rng(0).random((1, 784), dtype=np.float32)
    singles = [to_model_input(mnist.x_test[i : i + 1]) for i in range(20)]
    for single in [*singles, np.zeros((1, 784), dtype=np.float32), noise]:
        expected = model.predict(single, verbose=0)
        np.testing.assert_allclose(classifier.predict(single), expected, atol=1e-5)


@keras_installed
@pytest.mark.parametrize("names", [("hidden", "output"), ("dense_7", "dense_3"), (None, None)])
def test_weights_are_found_whatever_the_layers_are_named(
    names: tuple[str | None, str | None], tmp_path: Path, mnist: MnistData
) -> None:
    # Keras files a layer's weights under its class, not its name: a reader going by the
    # name swaps or misses them.
    import keras  # noqa: PLC0415

    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            keras.layers.Dense(64, activation="relu", name=names[0]),
            keras.layers.Dense(10, activation="softmax", name=names[1]),
        ]
    )
    model.save(tmp_path / "named.keras")
    inputs = to_model_input(mnist.x_test[:100])
    expected = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(
        load_classifier(tmp_path / "named.keras").predict(inputs), expected, atol=1e-5
    )


@keras_installed
def test_a_convolutional_model_is_refused(tmp_path: Path) -> None:
    import keras  # noqa: PLC0415

    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(4, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.save(tmp_path / "conv.keras")
    with pytest.raises(ModelFileError, match="Conv2D"):
        load_classifier(tmp_path / "conv.keras")


def test_a_single_digit_gives_one_row(committed_model_path: Path, mnist: MnistData) -> None:
    probabilities = load_classifier(committed_model_path).predict(to_model_input(mnist.x_test[:1]))
    assert probabilities.shape == (1, 10)
    assert probabilities.argmax() == mnist.y_test[0]


def rewritten(source: Path, target: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the model file `source` whose config.json `change` has edited."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            copy.writestr(item, data)
    return target


def layer(config: dict[str, Any], index: int) -> dict[str, Any]:
    return config["config"]["layers"][index]["config"]


CHANGES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "sigmoid hidden layer": (
        lambda config: layer(config, 1).update(activation="sigmoid"),
        "hidden Dense layer has {'activation': 'sigmoid'",
    ),
    "20 outputs": (lambda config: layer(config, 2).update(units=20), "'units': 20"),
    "no output bias": (lambda config: layer(config, 2).update(use_bias=False), "'use_bias': False"),
    "a third Dense layer": (
        lambda config: config["config"]["layers"].append(config["config"]["layers"][2]),
        "layers ['InputLayer', 'Dense', 'Dense', 'Dense']",
    ),
    "28x28 input": (
        lambda config: layer(config, 0).update(batch_shape=[None, 28, 28]),
        "input shape [None, 28, 28]",
    ),
    "a functional model": (
        lambda config: config.update(class_name="Functional"),
        "a Functional model",
    ),
    "wider hidden layer than its weights": (
        lambda config: layer(config, 1).update(units=600),
        "weight shapes",
    ),
}


@pytest.mark.parametrize("name", CHANGES)
def test_other_architectures_are_refused_with_the_reason(
    name: str, committed_model_path: Path, tmp_path: Path
) -> None:
    change, reason = CHANGES[name]
    path = rewritten(committed_model_path, tmp_path / "changed.keras", change)
    with pytest.raises(ModelFileError) as refused:
        load_classifier(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert reason in str(refused.value)


def test_files_that_are_no_model_are_refused(tmp_path: Path, committed_model_path: Path) -> None:
    missing = tmp_path / "missing.keras"
    with pytest.raises(ModelFileError, match="model file not found"):
        load_classifier(missing)
    text = tmp_path / "text.keras"
    text.write_text("not a zip archive")
    with pytest.raises(ModelFileError, match=r"not a readable \.keras model file"):
        load_classifier(text)
    without_weights = tmp_path / "config-only.keras"
    with (
        zipfile.ZipFile(committed_model_path) as original,
        zipfile.ZipFile(without_weights, "w") as copy,
    ):
        copy.writestr("config.json", original.read("config.json"))
    with pytest.raises(ModelFileError, match=r"model\.weights\.h5"):
        load_classifier(without_weights)
