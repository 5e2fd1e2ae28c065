"""The committed `.keras` model read without TensorFlow, and its card.

A `.keras` file is a zip archive holding `config.json` (the architecture as Keras serialised
it) and `model.weights.h5` (HDF5: each layer's variables under `layers/<class>/vars/<index>`,
kernel first, then bias). The server reads both with zipfile and h5py, checks that the
architecture is the Dense network it runs, and refuses anything else at start-up: importing
TensorFlow to read two matrices would cost 500 MB per process and seconds of start-up.
"""

import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from app.mnist import INPUT_SIZE, NUM_CLASSES
from app.serving.inference import DenseClassifier

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.weights.h5"
# Keras stores a layer's variables under its class's name in snake case, numbered from the
# second layer of a class on, whatever the layer's own name: the two Dense layers' groups.
DENSE_WEIGHT_GROUPS = ("layers/dense", "layers/dense_1")


class ModelFileError(ValueError):
    """The model file is missing, unreadable, or not the Dense network this server runs."""


def model_card_path(model_path: Path) -> Path:
    """The model card of `model_path`: the same name with `.json`."""
    return model_path.with_suffix(".json")


def read_model_card(model_path: Path) -> dict[str, Any]:
    """The model card beside `model_path`, or an empty dict when there is none."""
    card_path = model_card_path(model_path)
    if not card_path.is_file():
        return {}
    return json.loads(card_path.read_text())


def dense_layers(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The configs of the two Dense layers of `Input(784) -> Dense(relu) -> Dense(10,
    softmax)`, as a `.keras` file's `config.json` describes them; anything else is refused."""
    if config.get("class_name") != "Sequential":
        raise ModelFileError(f"a {config.get('class_name')} model, not a Sequential one")
    layers = config.get("config", {}).get("layers", [])
    kinds = [layer.get("class_name") for layer in layers]
    if kinds != ["InputLayer", "Dense", "Dense"]:
        raise ModelFileError(f"layers {kinds}, expected ['InputLayer', 'Dense', 'Dense']")
    input_shape = layers[0]["config"].get("batch_shape")
    if input_shape != [None, INPUT_SIZE]:
        raise ModelFileError(f"input shape {input_shape}, expected [None, {INPUT_SIZE}]")
    hidden, output = (layer["config"] for layer in layers[1:])
    expected = {
        "hidden": (hidden, {"activation": "relu", "use_bias": True}),
        "output": (output, {"activation": "softmax", "use_bias": True, "units": NUM_CLASSES}),
    }
    for role, (layer, wanted) in expected.items():
        found = {key: layer.get(key) for key in wanted}
        if found != wanted:
            raise ModelFileError(f"the {role} Dense layer has {found}, expected {wanted}")
    return [hidden, output]


def load_classifier(path: Path) -> DenseClassifier:
    """The Dense network stored in the `.keras` file at `path`, ready to predict."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read(CONFIG_NAME))
            weights_file = io.BytesIO(archive.read(WEIGHTS_NAME))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: model file not found") from None
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: not a readable .keras model file ({error})") from None
    try:
        hidden = dense_layers(config)[0]  # both layers checked
        with h5py.File(weights_file, "r") as weights:
            arrays = [
                np.asarray(weights[f"{group}/vars/{index}"], dtype=np.float32)
                for group in DENSE_WEIGHT_GROUPS
                for index in (0, 1)
            ]
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}") from None
    except (OSError, KeyError) as error:
        raise ModelFileError(f"{path}: the weights cannot be read ({error})") from None
    hidden_weights, hidden_bias, output_weights, output_bias = arrays
    units = hidden["units"]
    shapes = [array.shape for array in arrays]
    if shapes != [(INPUT_SIZE, units), (units,), (units, NUM_CLASSES), (NUM_CLASSES,)]:
        raise ModelFileError(f"{path}: weight shapes {shapes} do not match its architecture")
    return DenseClassifier(hidden_weights, hidden_bias, output_weights, output_bias)


def calibrated(classifier: DenseClassifier, card: dict[str, Any]) -> DenseClassifier:
    """The classifier with the temperature its model card gives (fitted on its validation
    split when trained), so its probabilities mean what they say; 1 without one."""
    temperature = (card.get("calibration") or {}).get("temperature", 1.0)
    return replace(classifier, temperature=temperature)


def load_calibrated_classifier(path: Path) -> DenseClassifier:
    """The model at `path`, calibrated as its card says."""
    return calibrated(load_classifier(path), read_model_card(path))
