"""Shared fixtures: the real MNIST copy beside the project, and the committed model."""

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from app.artifacts import DEFAULT_MODEL_PATH, PROJECT_ROOT
from app.data import MnistData, load_idx_directory

MNIST_DIR = Path(os.environ.get("MNIST_DIR", PROJECT_ROOT.parent / "shared" / "data" / "mnist"))


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not MNIST_DIR.is_dir():
        pytest.fail(f"MNIST IDX files not found at {MNIST_DIR}; set MNIST_DIR to their directory")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> MnistData:
    return load_idx_directory(mnist_dir)


@pytest.fixture(scope="session")
def committed_model_path() -> Path:
    return DEFAULT_MODEL_PATH


def encode(image: Image.Image, image_format: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()
