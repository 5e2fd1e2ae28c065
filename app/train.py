"""Train the Dense MNIST network and write it, with its model card, into `models/`.

Keras' MNIST download by default; `--data-dir ../shared/data/mnist` trains offline from the
four IDX files.
"""

import argparse
import platform
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from app.artifacts import (
    DEFAULT_MODEL_PATH,
    model_card_path,
    sha256_of_file,
    write_atomically,
    write_json_atomically,
)
from app.data import IMAGE_SIDE, NUM_CLASSES, MnistData, MnistDataError, load_mnist, to_model_input


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters; the defaults are the recipe of Deep Learning with Python, chapter 2."""

    epochs: int = 5
    batch_size: int = 128
    seed: int = 0
    optimizer: str = "rmsprop"
    loss: str = "sparse_categorical_crossentropy"
    hidden_units: int = 512


def build_model(config: TrainingConfig) -> keras.Model:
    """Dense(512, relu) -> Dense(10, softmax) on 784 inputs, compiled as in the book."""
    model = keras.Sequential(
        [
            keras.Input(shape=(IMAGE_SIDE * IMAGE_SIDE,)),
            keras.layers.Dense(config.hidden_units, activation="relu"),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="mnist_dense",
    )
    model.compile(optimizer=config.optimizer, loss=config.loss, metrics=["accuracy"])
    return model


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and ask TensorFlow for deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def describe_architecture(model: keras.Model) -> dict[str, Any]:
    return {
        "input_shape": list(model.input_shape[1:]),
        "layers": [
            {
                "type": type(layer).__name__,
                "units": layer.units,
                "activation": layer.activation.__name__,
            }
            for layer in model.layers
        ],
        "parameters": int(model.count_params()),
    }


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def epoch_line_logger() -> keras.callbacks.Callback:
    """A Keras callback printing one line per epoch, for logs where a progress bar is noise."""

    class EpochLineLogger(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            figures = " - ".join(f"{name} {value:.4f}" for name, value in (logs or {}).items())
            seconds = time.perf_counter() - self.started
            print(f"epoch {epoch + 1}/{self.params['epochs']} - {seconds:.1f}s - {figures}")

    return EpochLineLogger()


def train(
    data: MnistData, config: TrainingConfig, output: Path, progress_bar: bool
) -> dict[str, Any]:
    """Fit the model on `data`, save it atomically to `output` with its card; return the card."""
    make_deterministic(config.seed)
    model = build_model(config)
    x_train, x_test = to_model_input(data.x_train), to_model_input(data.x_test)

    started = time.perf_counter()
    model.fit(
        x_train,
        data.y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        verbose=1 if progress_bar else 0,
        callbacks=[] if progress_bar else [epoch_line_logger()],
    )
    training_seconds = time.perf_counter() - started
    test_loss, test_accuracy = model.evaluate(x_test, data.y_test, verbose=0)

    write_atomically(output, model.save)
    card = {
        "name": model.name,
        "file": {"name": output.name, "sha256": sha256_of_file(output)},
        "architecture": describe_architecture(model),
        "training": {
            **asdict(config),
            "metrics": ["accuracy"],
            "seconds": round(training_seconds, 1),
        },
        "data": {
            "source": data.source,
            "sha256": data.sha256,
            "train_samples": len(data.x_train),
            "test_samples": len(data.x_test),
        },
        "evaluation": {
            "test_loss": round(float(test_loss), 4),
            "test_accuracy": round(float(test_accuracy), 4),
        },
        "versions": library_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json_atomically(model_card_path(output), card)
    return card


def limit_samples(
    data: MnistData, train_samples: int | None, test_samples: int | None
) -> MnistData:
    """The first `train_samples` / `test_samples` images of each split (all when None)."""
    return MnistData(
        x_train=data.x_train[:train_samples],
        y_train=data.y_train[:train_samples],
        x_test=data.x_test[:test_samples],
        y_test=data.y_test[:test_samples],
        source=data.source,
        sha256=data.sha256,
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    defaults = TrainingConfig()
    parser = argparse.ArgumentParser(
        prog="python -m app.train", description="Train the Dense MNIST network."
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="directory of the four MNIST IDX files (.gz or raw); "
        "default: keras.datasets.mnist.load_data()",
    )
    parser.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--output", type=Path, default=DEFAULT_MODEL_PATH, help="model file")
    parser.add_argument("--train-samples", type=positive_int, help="train on the first N images")
    parser.add_argument("--test-samples", type=positive_int, help="test on the first N images")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.output.suffix != ".keras":
        print(f"error: {arguments.output}: the model file name must end in .keras", file=sys.stderr)
        return 2
    try:
        data = load_mnist(arguments.data_dir)
    except MnistDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    data = limit_samples(data, arguments.train_samples, arguments.test_samples)
    config = TrainingConfig(
        epochs=arguments.epochs, batch_size=arguments.batch_size, seed=arguments.seed
    )
    # Keras' live progress bar only makes sense on a terminal; in logs, one line per epoch.
    card = train(data, config, arguments.output, progress_bar=sys.stdout.isatty())
    evaluation = card["evaluation"]
    print(
        f"test accuracy {evaluation['test_accuracy']:.4f}, loss {evaluation['test_loss']:.4f}; "
        f"saved {arguments.output} and {model_card_path(arguments.output).name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
