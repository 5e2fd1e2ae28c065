"""The IDX reader and MNIST loading, on files written here and on the real MNIST copy."""

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from app.idx import IDX_FILE_NAMES, IMAGES_MAGIC, LABELS_MAGIC, MnistDataError, read_idx
from app.training.data import MnistData, load_idx_directory, to_model_input
from tests.conftest import run_module


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_mnist_dir(directory: Path, n_train: int = 12, n_test: int = 5, compress: bool = True):
    """A small but well-formed MNIST directory; returns the arrays written."""
    rng = np.random.default_rng(7)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        raw = idx_bytes(array, IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC)
        name = IDX_FILE_NAMES[key]
        if compress:
            (directory / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (directory / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_round_trip_of_written_files(tmp_path: Path, compress: bool) -> None:
    written = write_mnist_dir(tmp_path, compress=compress)
    data = load_idx_directory(tmp_path)
    np.testing.assert_array_equal(data.x_train, written["train_images"])
    np.testing.assert_array_equal(data.y_train, written["train_labels"])
    np.testing.assert_array_equal(data.x_test, written["test_images"])
    np.testing.assert_array_equal(data.y_test, written["test_labels"])
    assert len(data.sha256) == 4


def test_bad_magic_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(3, np.uint8), IMAGES_MAGIC))
    with pytest.raises(MnistDataError, match=r"labels: bad magic number 0x00000803"):
        read_idx(path, LABELS_MAGIC)


def test_truncated_file_names_the_file(tmp_path: Path) -> None:
    write_mnist_dir(tmp_path, compress=False)
    images = tmp_path / IDX_FILE_NAMES["train_images"]
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(MnistDataError, match=r"train-images-idx3-ubyte: truncated"):
        load_idx_directory(tmp_path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08")
    with pytest.raises(MnistDataError, match=r"t10k-labels-idx1-ubyte: truncated header"):
        read_idx(path, LABELS_MAGIC)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    write_mnist_dir(tmp_path)
    labels = tmp_path / f"{IDX_FILE_NAMES['test_labels']}.gz"
    labels.write_bytes(labels.read_bytes()[:20])
    with pytest.raises(MnistDataError, match=r"t10k-labels-idx1-ubyte.gz: corrupt gzip"):
        load_idx_directory(tmp_path)


def test_count_mismatch_names_the_file(tmp_path: Path) -> None:
    write_mnist_dir(tmp_path)
    labels = tmp_path / f"{IDX_FILE_NAMES['train_labels']}.gz"
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(11, np.uint8), LABELS_MAGIC)))
    with pytest.raises(MnistDataError, match=r"train-labels-idx1-ubyte.gz: 11 labels for 12"):
        load_idx_directory(tmp_path)


def test_wrong_image_shape_names_the_file(tmp_path: Path) -> None:
    write_mnist_dir(tmp_path)
    images = tmp_path / f"{IDX_FILE_NAMES['test_images']}.gz"
    images.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 32, 32), np.uint8), IMAGES_MAGIC)))
    with pytest.raises(MnistDataError, match=r"t10k-images-idx3-ubyte.gz: images are 32x32"):
        load_idx_directory(tmp_path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    write_mnist_dir(tmp_path)
    (tmp_path / f"{IDX_FILE_NAMES['test_images']}.gz").unlink()
    with pytest.raises(MnistDataError, match=r"t10k-images-idx3-ubyte\[\.gz\]: file not found"):
        load_idx_directory(tmp_path)


@pytest.mark.training
def test_training_cli_reports_a_corrupt_file_in_one_line(tmp_path: Path) -> None:
    write_mnist_dir(tmp_path)
    (tmp_path / f"{IDX_FILE_NAMES['train_images']}.gz").write_bytes(b"not gzip at all")
    result = run_module("app.train", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    # TensorFlow may print its start-up notices; ours is one line naming the file.
    [message] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "train-images-idx3-ubyte.gz: truncated header" in message


def test_real_mnist_copy(mnist: MnistData) -> None:
    assert mnist.x_train.shape == (60000, 28, 28)
    assert mnist.x_test.shape == (10000, 28, 28)
    train_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(mnist.y_train).tolist() == train_counts
    assert np.bincount(mnist.y_test).tolist() == test_counts


def test_uncompressed_copy_reads_the_same(mnist_dir: Path, mnist: MnistData, tmp_path: Path):
    name = IDX_FILE_NAMES["test_labels"]
    with gzip.open(mnist_dir / f"{name}.gz") as compressed, (tmp_path / name).open("wb") as raw:
        shutil.copyfileobj(compressed, raw)
    np.testing.assert_array_equal(read_idx(tmp_path / name, LABELS_MAGIC), mnist.y_test)


def test_model_input_is_784_floats_in_unit_range(mnist: MnistData) -> None:
    x = to_model_input(mnist.x_test[:100])
    assert x.shape == (100, 784)
    assert x.dtype == np.float32
    assert x.min() == 0.0
    assert x.max() == 1.0
