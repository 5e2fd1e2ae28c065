"""Corrections exported as MNIST's IDX files, from corrections made through the API, in
SQLite and in a real PostgreSQL server."""

import struct
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.idx import IDX_FILE_NAMES, IMAGES_MAGIC, LABELS_MAGIC
from app.serving.application import create_app
from app.serving.preprocessing import preprocess
from app.serving.settings import Settings
from app.training.data import MnistData, load_idx_directory
from app.training.drawings import DrawingStyle, render_drawing
from tests.conftest import run_module

pytestmark = pytest.mark.slow


def test_corrections_become_the_four_mnist_files(
    store_url: str, mnist: MnistData, tmp_path: Path
) -> None:
    drawings = [render_drawing(digit, DrawingStyle()) for digit in mnist.x_test[:12]]
    labels = [int(label) for label in mnist.y_test[:12]]
    settings = Settings(database_url=store_url, corrections_per_minute=100)
    with TestClient(create_app(settings)) as client:
        ids = [
            client.post(
                "/api/feedback", files={"file": ("d.png", png)}, data={"label": str(label)}
            ).json()["id"]
            for png, label in zip(drawings, labels, strict=True)
        ]
    out = tmp_path / "corrections"
    result = run_module(
        "app.feedback", "export", "--out", str(out), "--database-url", store_url, check=True
    )

    test = [index for index, id_ in enumerate(ids) if id_ % 5 == 0]
    train = [index for index in range(len(ids)) if index not in test]
    assert f"{len(train)} training and {len(test)} test corrections" in result.stdout
    for key, magic, count in (
        ("train_images", IMAGES_MAGIC, len(train)),
        ("train_labels", LABELS_MAGIC, len(train)),
        ("test_images", IMAGES_MAGIC, len(test)),
        ("test_labels", LABELS_MAGIC, len(test)),
    ):
        header = (out / IDX_FILE_NAMES[key]).read_bytes()[:8]
        assert struct.unpack(">II", header) == (magic, count)
    data = load_idx_directory(out)  # the project's own reader, with all its checks
    assert data.y_train.tolist() == [labels[index] for index in train]
    assert data.y_test.tolist() == [labels[index] for index in test]
    # The digits are the server's own inputs, 8 bits a pixel.
    expected = np.round(preprocess(drawings[train[0]]) * 255).reshape(28, 28)
    np.testing.assert_array_equal(data.x_train[0], expected)


def test_an_empty_store_exports_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'corrections.sqlite3'}"
    result = run_module("app.feedback", "export", "--out", str(tmp_path / "out"),
                        "--database-url", url)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no corrections in the store yet: nothing written"
    assert not (tmp_path / "out").exists()


def test_an_unreachable_store_is_one_clear_line(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    result = run_module("app.feedback", "export", "--out", str(tmp_path), "--database-url", url)
    assert result.returncode == 2
    assert result.stderr.startswith("error: the corrections store cannot be opened")
    assert len(result.stderr.strip().splitlines()) == 1
