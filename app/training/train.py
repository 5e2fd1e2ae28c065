"""Train the Dense MNIST network and write it, with its model card, into `models/`.

Keras' MNIST download by default; `--data-dir ../shared/data/mnist` trains offline from the
four IDX files. Two presets share the network, Dense(512, relu) -> Dense(10, softmax):

- `seed`: the recipe of Deep Learning with Python, chapter 2, exactly (rmsprop, 5 epochs,
  batch 128, no augmentation);
- `default`: what is served. The same network trained on augmented digits (rotation, slant,
  elastic distortion, stroke width; see app/training/augmentation.py), with a validation
  split, early stopping that keeps the best weights, and a cosine learning-rate decay.
"""

import argparse
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from app.mnist import INPUT_SIZE, NUM_CLASSES
from app.paths import DEFAULT_MODEL_PATH
from app.serving.model_file import model_card_path
from app.training.artifacts import sha256_of_file, write_atomically, write_json_atomically
from app.training.augmentation import Augmentation, augment_batch
from app.training.data import MnistData, MnistDataError, load_mnist, to_model_input


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters; the defaults are the recipe of Deep Learning with Python, chapter 2."""

    preset: str = "seed"
    epochs: int = 5
    batch_size: int = 128
    seed: int = 0
    optimizer: str = "rmsprop"
    learning_rate: float = 0.001
    cosine_decay: bool = False  # decay the learning rate to zero along a half cosine
    loss: str = "sparse_categorical_crossentropy"
    hidden_units: int = 512
    augmentation: Augmentation | None = None
    validation_share: float = 0.0  # of the training images, held out for early stopping
    patience: int = 0  # epochs without a better validation loss before stopping


PRESETS = {
    "seed": TrainingConfig(),
    "default": TrainingConfig(
        preset="default",
        epochs=60,
        optimizer="adam",
        cosine_decay=True,
        augmentation=Augmentation(),
        validation_share=1 / 12,
        patience=12,
    ),
}


def build_model(config: TrainingConfig, steps_per_epoch: int = 1) -> keras.Model:
    """Dense(512, relu) -> Dense(10, softmax) on 784 inputs, compiled for `config`."""
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_SIZE,)),
            keras.layers.Dense(config.hidden_units, activation="relu"),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="mnist_dense",
    )
    model.compile(
        optimizer=build_optimizer(config, steps_per_epoch), loss=config.loss, metrics=["accuracy"]
    )
    return model


OPTIMIZERS = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam}


def build_optimizer(config: TrainingConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = config.learning_rate
    if config.cosine_decay:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.epochs * steps_per_epoch
        )
    return OPTIMIZERS[config.optimizer](learning_rate=learning_rate)


def split_validation(
    images: np.ndarray, labels: np.ndarray, share: float, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(training, validation) images and labels: a seeded random `share` held out.

    With no share held out, the training set stays exactly as loaded, as in the book.
    """
    held_out = round(len(images) * share)
    if held_out == 0:
        return (images, labels), (images[:0], labels[:0])
    order = np.random.default_rng(seed).permutation(len(images))
    train, validation = order[held_out:], order[:held_out]
    return (images[train], labels[train]), (images[validation], labels[validation])


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


def epoch_line_logger(epochs: int) -> keras.callbacks.Callback:
    """A Keras callback printing one line per epoch, for logs where a progress bar is noise."""

    class EpochLineLogger(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            figures = " - ".join(f"{name} {value:.4f}" for name, value in (logs or {}).items())
            seconds = time.perf_counter() - self.started
            print(f"epoch {epoch + 1}/{epochs} - {seconds:.1f}s - {figures}", flush=True)

    return EpochLineLogger()


AUGMENTATION_CHUNK = 128  # images augmented at once: larger chunks fall out of the CPU cache


def augmented_epoch(
    images: np.ndarray, labels: np.ndarray, augmentation: Augmentation, seed: int, epoch: int
) -> tuple[np.ndarray, np.ndarray]:
    """The training set shuffled and freshly augmented, from a (seed, epoch) random stream."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(images))
    inputs = np.concatenate(
        [
            augment_batch(images[order[start : start + AUGMENTATION_CHUNK]], rng, augmentation)
            for start in range(0, len(images), AUGMENTATION_CHUNK)
        ]
    )
    return inputs, labels[order]


@dataclass
class FitResult:
    epochs_run: int
    best_epoch: int | None
    history: dict[str, list[float]]


def fit_plain(
    model: keras.Model,
    config: TrainingConfig,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    progress_bar: bool,
) -> FitResult:
    """The book's loop: one `fit` over the unaugmented images."""
    history = model.fit(
        to_model_input(images),
        labels,
        batch_size=config.batch_size,
        epochs=config.epochs,
        verbose=1 if progress_bar else 0,
        callbacks=[] if progress_bar else [epoch_line_logger(config.epochs)],
    )
    return FitResult(len(history.epoch), None, history.history)


def fit_augmented(
    model: keras.Model,
    config: TrainingConfig,
    images: np.ndarray,
    labels: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    *,
    progress_bar: bool,
) -> FitResult:
    """Each epoch on freshly augmented images; stop when validation loss has not improved for
    `patience` epochs, and keep the weights of the best epoch.

    Epochs are augmented between `fit` calls, while TensorFlow is idle: augmenting inside
    `fit` (a Keras PyDataset) ran at half the speed, TensorFlow's threads spinning on both cores.
    """
    augmentation = config.augmentation or Augmentation()
    validation_data = (to_model_input(validation[0]), validation[1])
    # Each `fit` call runs one epoch of the whole run, so Keras counts "Epoch 7/60" right.
    one_epoch = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", True)
    )
    callbacks = [one_epoch] + ([] if progress_bar else [epoch_line_logger(config.epochs)])
    history: dict[str, list[float]] = {}
    best_loss, best_weights, best_epoch = math.inf, model.get_weights(), 0
    for epoch in range(config.epochs):
        inputs, shuffled_labels = augmented_epoch(images, labels, augmentation, config.seed, epoch)
        logs = model.fit(
            inputs,
            shuffled_labels,
            batch_size=config.batch_size,
            epochs=config.epochs,
            initial_epoch=epoch,
            shuffle=False,  # shuffled with the augmentation, from the seeded stream
            validation_data=validation_data,
            verbose=1 if progress_bar else 0,
            callbacks=callbacks,
        ).history
        for name, values in logs.items():
            history.setdefault(name, []).extend(values)
        if logs["val_loss"][-1] < best_loss:
            best_loss, best_weights, best_epoch = logs["val_loss"][-1], model.get_weights(), epoch
        elif epoch - best_epoch >= config.patience:
            break
    model.set_weights(best_weights)
    return FitResult(epoch + 1, best_epoch + 1, history)


def train(
    data: MnistData, config: TrainingConfig, output: Path, progress_bar: bool
) -> dict[str, Any]:
    """Fit the model on `data`, save it atomically to `output` with its card; return the card."""
    make_deterministic(config.seed)
    (train_images, train_labels), validation = split_validation(
        data.x_train, data.y_train, config.validation_share, config.seed
    )
    model = build_model(config, steps_per_epoch=math.ceil(len(train_images) / config.batch_size))
    started = time.perf_counter()
    if config.augmentation is None:
        result = fit_plain(model, config, train_images, train_labels, progress_bar=progress_bar)
    else:
        result = fit_augmented(
            model, config, train_images, train_labels, validation, progress_bar=progress_bar
        )
    training_seconds = time.perf_counter() - started
    test_loss, test_accuracy = model.evaluate(to_model_input(data.x_test), data.y_test, verbose=0)

    write_atomically(output, model.save)
    card = {
        "name": model.name,
        "file": {"name": output.name, "sha256": sha256_of_file(output)},
        "architecture": describe_architecture(model),
        "training": {
            **asdict(config),
            "metrics": ["accuracy"],
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "seconds": round(training_seconds, 1),
        },
        "data": {
            "source": data.source,
            "sha256": data.sha256,
            "train_samples": len(train_images),
            "validation_samples": len(validation[0]),
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
    parser = argparse.ArgumentParser(
        prog="python -m app.train", description="Train the Dense MNIST network."
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help="seed: the book's exact recipe; default: augmented, early-stopped (served)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="directory of the four MNIST IDX files (.gz or raw); "
        "default: keras.datasets.mnist.load_data()",
    )
    parser.add_argument("--epochs", type=positive_int, help="default: the preset's")
    parser.add_argument("--batch-size", type=positive_int, help="default: the preset's")
    parser.add_argument("--seed", type=int, help="default: the preset's")
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
    overrides = {
        name: getattr(arguments, name)
        for name in ("epochs", "batch_size", "seed")
        if getattr(arguments, name) is not None
    }
    config = replace(PRESETS[arguments.preset], **overrides)
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
