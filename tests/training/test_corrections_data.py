"""Corrections made through the API, exported, then measured and trained on: the path from
people's drawings back into the model, end to end on a small set."""

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.serving.application import create_app
from app.serving.model_file import model_card_path
from app.serving.settings import Settings
from app.training.data import MnistData
from app.training.drawings import random_style, render_drawing
from tests.conftest import run_module

pytestmark = pytest.mark.training

CORRECTIONS = 30  # every fifth by id is kept for testing: 24 to train on, 6 to test


@pytest.fixture(scope="module")
def exported(mnist: MnistData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Corrections of digits drawn on canvases, stored in SQLite and exported as IDX files."""
    directory = tmp_path_factory.mktemp("corrections")
    url = f"sqlite:///{directory / 'corrections.db'}"
    rng = np.random.default_rng(7)
    settings = Settings(database_url=url, corrections_per_minute=1000)
    with TestClient(create_app(settings)) as client:
        digits = zip(mnist.x_test[-CORRECTIONS:], mnist.y_test[-CORRECTIONS:], strict=True)
        for digit, label in digits:
            png = render_drawing(digit, random_style(rng))
            response = client.post(
                "/api/feedback", files={"file": ("d.png", png)}, data={"label": str(label)}
            )
            assert response.status_code == 201
    out = directory / "idx"
    run_module("app.feedback", "export", "--out", str(out), "--database-url", url, check=True)
    return out


def test_the_evaluation_reports_accuracy_on_corrections(exported: Path, model_copy: Path) -> None:
    result = run_module(
        "app.evaluate",
        "--model",
        str(model_copy),
        "--data-dir",
        str(exported),
        "--workers",
        "1",
        timeout=300,
        check=True,
    )
    assert "Raw MNIST test set: accuracy" in result.stdout
    assert "style set, numbers: skipped (fewer than 1000 test digits)" in result.stdout
    evaluation = json.loads(model_card_path(model_copy).read_text())["evaluation"]
    assert sum(map(sum, evaluation["test_confusion"])) == CORRECTIONS // 5
    assert evaluation["canvas_samples"] == CORRECTIONS // 5
    assert 0.0 <= evaluation["test_ece"] <= 1.0


def test_training_adds_the_corrections_with_their_weight(
    exported: Path, mnist_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "mnist_dense.keras"
    arguments = ["--preset", "seed", "--epochs", "1", "--train-samples", "2000"]
    run_module(
        "app.train",
        *arguments,
        "--test-samples",
        "500",
        "--data-dir",
        str(mnist_dir),
        "--output",
        str(output),
        "--extra-data",
        str(exported),
        "--extra-weight",
        "3",
        timeout=600,
        check=True,
    )
    card = json.loads(model_card_path(output).read_text())
    trained_on = CORRECTIONS - CORRECTIONS // 5
    assert card["data"]["extra"]["samples"] == trained_on
    assert card["data"]["extra"]["weight"] == 3
    assert card["data"]["train_samples"] == 2000 + 3 * trained_on
    assert card["data"]["test_samples"] == 500  # MNIST's test set, never the corrections'
