"""Shared fixtures: the real MNIST copy beside the project, and the committed model."""

import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.artifacts import DEFAULT_MODEL_PATH, PROJECT_ROOT, SEED_MODEL_PATH
from app.config import Settings
from app.data import MnistData, load_idx_directory
from app.drawings import DrawingStyle, render_drawing
from app.main import create_app

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
    """The served model: the default preset."""
    return DEFAULT_MODEL_PATH


@pytest.fixture(scope="session")
def committed_seed_model_path() -> Path:
    """The book's recipe, kept for comparison."""
    return SEED_MODEL_PATH


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    """The real app with the committed model, its lifespan run by `with`."""
    with TestClient(create_app(Settings())) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def seven_png(mnist: MnistData) -> bytes:
    """A real MNIST 7 as a transparent 280x280 canvas PNG, as the browser page sends it."""
    return render_drawing(mnist.x_test[0], DrawingStyle(background="transparent"))


def run_module(
    module: str,
    *arguments: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`python -m module arguments` from the project root, as a user runs it; output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(**settings: str) -> Iterator[str]:
    """`python -m app.serve` on a free port, as `make run` starts it; yields its URL once the
    model is loaded, and checks that it shuts down cleanly."""
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "warning"}
    server = subprocess.Popen(
        [sys.executable, "-m", "app.serve"], cwd=PROJECT_ROOT, env={**env, **settings}
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the server did not become ready")
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        # uvicorn shuts down, then re-raises SIGTERM so the exit status tells why it ended.
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)


def encode(image: Image.Image, image_format: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()
