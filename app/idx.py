"""MNIST's file format, IDX: read by training and evaluation, written by the export of
corrections (app.serving.corrections.export), so that any MNIST tool reads them too."""

import gzip
import struct
from pathlib import Path

import numpy as np

# The IDX magic number is two zero bytes, a type code (0x08: unsigned byte) and the number of
# dimensions: 3 for images (count, rows, columns), 1 for labels (count).
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

IDX_FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class MnistDataError(ValueError):
    """A data file is missing or is not a valid MNIST IDX file; the message names the file."""


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Read one IDX file (raw or gzip) into a uint8 array, validating its header and length."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MnistDataError(f"{path}: file not found") from None
    except OSError as error:
        raise MnistDataError(f"{path}: cannot read ({error.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise MnistDataError(f"{path}: corrupt gzip data ({error})") from None

    ndim = expected_magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise MnistDataError(f"{path}: truncated header ({len(raw)} bytes)")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != expected_magic:
        raise MnistDataError(
            f"{path}: bad magic number 0x{magic:08x}, expected 0x{expected_magic:08x}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected_size = header_size + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected_size:
        problem = "truncated" if len(raw) < expected_size else "trailing data"
        raise MnistDataError(
            f"{path}: {problem}: header promises {'x'.join(map(str, shape))} values "
            f"({expected_size} bytes) but the file has {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write uint8 images (n, 28, 28) or labels (n,) as one raw IDX file."""
    magic = {3: IMAGES_MAGIC, 1: LABELS_MAGIC}[array.ndim]
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())
