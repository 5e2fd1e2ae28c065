"""Shared fixtures: the real MNIST copy beside the project, and the committed model."""

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.paths import DEFAULT_MODEL_PATH, PROJECT_ROOT, SEED_MODEL_PATH
from app.serving.application import create_app
from app.serving.model_file import model_card_path
from app.serving.settings import Settings
from app.training.data import MnistData, load_idx_directory
from app.training.drawings import DrawingStyle, render_drawing

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


@pytest.fixture
def model_copy(committed_model_path: Path, tmp_path: Path) -> Path:
    """A copy of the served model and its card, for a test to change or write into."""
    model = tmp_path / committed_model_path.name
    shutil.copy(committed_model_path, model)
    shutil.copy(model_card_path(committed_model_path), model_card_path(model))
    return model


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


@dataclass(frozen=True)
class RunningServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the server did not become ready")
            time.sleep(0.2)


@contextmanager
def running_server(
    *command: str, output: Path | None = None, **settings: str
) -> Iterator[RunningServer]:
    """`python -m app.serve` (or the argv `command`, {port} filled in) on a free port, as
    `make run` starts it; yields it once the model is loaded, and checks that it shuts down
    cleanly. Its standard output and error go to the file `output` if given."""
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "warning"}
    argv = [part.format(port=port) for part in command] or [sys.executable, "-m", "app.serve"]
    with ExitStack() as files:
        # Appending: the server's processes write whole lines to it at once.
        log = files.enter_context(output.open("ab")) if output is not None else None
        process = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env={**env, **settings}, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, process)
            yield RunningServer(url, port, process)
        finally:
            if process.poll() is None:  # not already stopped by the test
                process.terminate()
                # uvicorn shuts down, then re-raises SIGTERM: the exit status tells why it
                # ended.
                assert process.wait(timeout=30) in (0, -signal.SIGTERM)


def encode(image: Image.Image, image_format: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def postgres_binaries() -> Path:
    """Debian's PostgreSQL programs (`make test` installs the postgresql package)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not found:
        pytest.fail("PostgreSQL not found in /usr/lib/postgresql; `make test` installs it")
    return found[-1]


def as_postgres_user(*command: str) -> list[str]:
    """PostgreSQL refuses to run as root: as the package's own user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server in a temporary directory, on a Unix socket there;
    yields its URL without a database name."""
    binaries = postgres_binaries()
    directory = Path(tempfile.mkdtemp(prefix="digit-canvas-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    data, port = directory / "data", free_port()
    subprocess.run(
        as_postgres_user(
            str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {directory} -c listen_addresses='' -c fsync=off"
    pg_ctl = str(binaries / "pg_ctl")
    subprocess.run(
        as_postgres_user(
            pg_ctl, "-D", str(data), "-o", options, "-l", str(directory / "log"), "-w", "start"
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@/{{database}}?host={directory}&port={port}"
    finally:
        subprocess.run(
            as_postgres_user(pg_ctl, "-D", str(data), "-m", "immediate", "stop"),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty corrections database: a SQLite file, or a database of the throwaway
    PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'corrections.sqlite3'}"
    server = request.getfixturevalue("postgres_server")
    database = f"corrections_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.format(database="postgres").replace("+psycopg", ""),
                         autocommit=True) as connection:  # fmt: skip
        connection.execute(f'CREATE DATABASE "{database}"')
    return server.format(database=database)
