"""The routes alone, with the classifier swapped for a fake through `dependency_overrides`:
what they give the model, and what they make of its answer."""

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.serving.application import create_app
from app.serving.dependencies import get_classifier
from app.serving.settings import Settings

PNG = {"Content-Type": "image/png"}
PROBABILITIES = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.5, 0.1, 0.12])


class FakeClassifier:
    """Answers PROBABILITIES for every input, and keeps what it was given."""

    input_size = 784

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        self.calls.append(inputs)
        return np.tile(PROBABILITIES, (len(inputs), 1)).astype(np.float32)


@pytest.fixture
def fake() -> FakeClassifier:
    return FakeClassifier()


@pytest.fixture
def client(fake: FakeClassifier) -> Iterator[TestClient]:
    app = create_app(Settings())
    app.dependency_overrides[get_classifier] = lambda: fake
    with TestClient(app) as test_client:
        yield test_client


def test_predict_answers_what_the_model_says(
    client: TestClient, fake: FakeClassifier, seven_png: bytes
) -> None:
    response = client.post("/api/predict", files={"file": ("7.png", seven_png, "image/png")})
    assert response.status_code == 200
    body = response.json()
    assert body["digit"] == 7
    assert body["confidence"] == pytest.approx(0.5)
    np.testing.assert_allclose(body["probabilities"], PROBABILITIES, rtol=1e-6)
    [given] = fake.calls
    # The model got one preprocessed drawing: 784 values in [0, 1], a fifth of them inked.
    assert given.shape == (1, 784)
    assert given.min() == 0.0 and given.max() == 1.0
    assert 0.05 < np.count_nonzero(given) / 784 < 0.4


def test_pixels_reach_the_model_as_sent(client: TestClient, fake: FakeClassifier) -> None:
    pixels = np.random.default_rng(0).random(784).round(3)
    for payload in (pixels.tolist(), pixels.reshape(28, 28).tolist()):
        response = client.post("/api/predict/pixels", json={"pixels": payload})
        assert response.status_code == 200
        assert response.json()["digit"] == 7
    for call in fake.calls:
        np.testing.assert_allclose(call, pixels[np.newaxis], rtol=1e-6)


def test_a_batch_is_one_forward_pass_of_its_readable_images(
    client: TestClient, fake: FakeClassifier, seven_png: bytes
) -> None:
    files = [("files", (name, data, "image/png")) for name, data in
             [("a", seven_png), ("b", b"no image"), ("c", seven_png)]]  # fmt: skip
    results = client.post("/api/predict/batch", files=files).json()["results"]
    assert [("prediction" in result, "error" in result) for result in results] == [
        (True, False),
        (False, True),
        (True, False),
    ]
    [given] = fake.calls
    assert given.shape == (2, 784)


def test_nothing_reaches_the_model_when_the_image_is_refused(
    client: TestClient, fake: FakeClassifier
) -> None:
    response = client.post("/api/predict", content=b"GIF89a", headers={"Content-Type": "image/gif"})
    assert response.status_code == 415
    assert fake.calls == []


def test_a_bug_is_a_500_in_json_with_the_security_headers(seven_png: bytes) -> None:
    class BrokenClassifier:
        def predict(self, inputs: np.ndarray) -> np.ndarray:
            raise RuntimeError("a bug")

    app = create_app(Settings())
    app.dependency_overrides[get_classifier] = BrokenClassifier
    with TestClient(app, raise_server_exceptions=False) as broken:
        response = broken.post("/api/predict", content=seven_png, headers=PNG)
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
