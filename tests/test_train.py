"""Training on real MNIST: a short run, its artefacts, determinism, and the committed model."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from app.artifacts import PROJECT_ROOT, model_card_path, sha256_of_file
from app.data import MnistData, to_model_input

SHORT_RUN = ["--train-samples", "6000", "--test-samples", "1000", "--epochs", "1"]


def run_training(mnist_dir: Path, output: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *(sys.executable, "-m", "app.train"),
            *("--data-dir", str(mnist_dir), "--output", str(output)),
            *extra,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )


def load_model(path: Path) -> keras.Model:
    return keras.saving.load_model(path)


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    probabilities = model.predict(to_model_input(images), batch_size=1000, verbose=0)
    return float(np.mean(probabilities.argmax(axis=1) == labels))


@pytest.fixture(scope="module")
def short_runs(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Two short runs with the same seed, in separate directories."""
    outputs = []
    for name in ("first", "second"):
        output = tmp_path_factory.mktemp(name) / "mnist_dense.keras"
        outputs.append((output, run_training(mnist_dir, output, *SHORT_RUN)))
    return outputs


def test_short_run_learns_real_digits(short_runs, mnist: MnistData) -> None:
    output, _ = short_runs[0]
    model = load_model(output)
    assert accuracy(model, mnist.x_test[:1000], mnist.y_test[:1000]) > 0.85


def test_short_run_writes_model_and_card(short_runs, mnist_dir: Path) -> None:
    output, result = short_runs[0]
    card = json.loads(model_card_path(output).read_text())
    assert card["file"] == {"name": "mnist_dense.keras", "sha256": sha256_of_file(output)}
    assert card["architecture"]["parameters"] == 784 * 512 + 512 + 512 * 10 + 10
    assert [layer["activation"] for layer in card["architecture"]["layers"]] == ["relu", "softmax"]
    assert card["training"]["epochs"] == 1
    assert card["training"]["batch_size"] == 128
    assert card["training"]["optimizer"] == "rmsprop"
    assert card["data"]["train_samples"] == 6000
    assert card["data"]["test_samples"] == 1000
    assert card["data"]["sha256"]["train-images-idx3-ubyte.gz"] == sha256_of_file(
        mnist_dir / "train-images-idx3-ubyte.gz"
    )
    assert card["evaluation"]["test_accuracy"] > 0.85
    assert card["training"]["seconds"] > 0
    assert {"python", "tensorflow", "keras", "numpy"} <= card["versions"].keys()
    # Not a terminal: one line per epoch instead of a progress bar, and no temporary files left.
    assert [line for line in result.stdout.splitlines() if line.startswith("epoch ")] == [
        line for line in result.stdout.splitlines() if "epoch 1/1" in line
    ]
    assert "\r" not in result.stdout
    assert sorted(path.name for path in output.parent.iterdir()) == [
        "mnist_dense.json",
        "mnist_dense.keras",
    ]


def test_same_seed_gives_identical_weights(short_runs) -> None:
    (first, _), (second, _) = short_runs
    for a, b in zip(load_model(first).get_weights(), load_model(second).get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_committed_model_reproduces_the_book(committed_model_path: Path, mnist: MnistData):
    model = load_model(committed_model_path)
    assert accuracy(model, mnist.x_test, mnist.y_test) >= 0.978
    card = json.loads(model_card_path(committed_model_path).read_text())
    assert card["evaluation"]["test_accuracy"] >= 0.978
    assert card["file"]["sha256"] == sha256_of_file(committed_model_path)
    assert card["data"]["train_samples"] == 60000
