"""MNIST loading: Keras' own downloader by default, or a directory of the four IDX files."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.idx import IDX_FILE_NAMES, IMAGES_MAGIC, LABELS_MAGIC, MnistDataError, read_idx
from app.mnist import IMAGE_SIDE, INPUT_SIZE, NUM_CLASSES
from app.training.artifacts import sha256_of_file


@dataclass(frozen=True)
class MnistData:
    """MNIST as uint8 images (n, 28, 28) and uint8 labels (n,), with where it came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    sha256: dict[str, str] = field(default_factory=dict)


def _find_idx_file(data_dir: Path, name: str) -> Path:
    """The IDX file `name` in `data_dir`, raw or gzip-compressed."""
    for candidate in (data_dir / name, data_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise MnistDataError(f"{data_dir / name}[.gz]: file not found")


def _check_split(
    images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path
) -> None:
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise MnistDataError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28"
        )
    if len(images) != len(labels):
        raise MnistDataError(
            f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path.name}"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise MnistDataError(f"{labels_path}: label {labels.max()} is not a digit 0-9")


def load_idx_directory(data_dir: Path) -> MnistData:
    """Load the four canonical MNIST IDX files from `data_dir`."""
    paths = {key: _find_idx_file(data_dir, name) for key, name in IDX_FILE_NAMES.items()}
    arrays = {
        key: read_idx(path, IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC)
        for key, path in paths.items()
    }
    for split in ("train", "test"):
        _check_split(
            arrays[f"{split}_images"],
            arrays[f"{split}_labels"],
            paths[f"{split}_images"],
            paths[f"{split}_labels"],
        )
    return MnistData(
        x_train=arrays["train_images"],
        y_train=arrays["train_labels"],
        x_test=arrays["test_images"],
        y_test=arrays["test_labels"],
        source=f"IDX files in {data_dir.resolve()}",
        sha256={path.name: sha256_of_file(path) for path in paths.values()},
    )


def load_keras_mnist() -> MnistData:
    """Load MNIST through `keras.datasets.mnist.load_data()`, downloading it on first use."""
    import keras  # noqa: PLC0415 - seconds to import, and only this data source needs it

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    # Keras verifies the download against its own hash; we record one of the arrays' contents,
    # which identifies the data whichever cache directory Keras used.
    arrays_digest = hashlib.sha256()
    for array in (x_train, y_train, x_test, y_test):
        arrays_digest.update(np.ascontiguousarray(array).tobytes())
    return MnistData(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        source="keras.datasets.mnist.load_data()",
        sha256={"mnist.npz arrays": arrays_digest.hexdigest()},
    )


def load_mnist(data_dir: Path | None = None) -> MnistData:
    """MNIST from `data_dir` (IDX files) when given, else from Keras' downloader."""
    return load_keras_mnist() if data_dir is None else load_idx_directory(data_dir)


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, 28, 28) -> float32 (n, 784) in [0, 1], the network's input."""
    return images.reshape(len(images), INPUT_SIZE).astype(np.float32) / 255.0
