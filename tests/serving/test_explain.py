"""Inside the network: the explanation of an answer holds the real numbers of its forward
pass, and they add up; the book's recipe is served beside the default model."""

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.serving.application import create_app
from app.serving.inference import softmax
from app.serving.model_file import load_classifier
from app.serving.schemas import Prediction
from app.serving.settings import Settings
from app.training.data import MnistData, to_model_input

PNG = {"Content-Type": "image/png"}


def pixels_of(mnist: MnistData, index: int) -> list[float]:
    return to_model_input(mnist.x_test[index : index + 1])[0].round(4).tolist()


@pytest.mark.parametrize("model", ["default", "seed"])
@pytest.mark.parametrize("index", [0, 1, 2, 8])
def test_pixel_and_bias_terms_add_up_to_the_logits(
    client: TestClient, mnist: MnistData, model: str, index: int
) -> None:
    response = client.post(
        f"/api/predict/pixels?explain=true&model={model}", json={"pixels": pixels_of(mnist, index)}
    )
    assert response.status_code == 200
    answer = response.json()
    explanation = answer["explanation"]
    logits = np.array(explanation["logits"])
    # The logits give the probabilities, through softmax (at the calibrated temperature).
    scaled = logits[np.newaxis] / explanation["temperature"]
    np.testing.assert_allclose(softmax(scaled)[0], answer["probabilities"], atol=1e-5)
    # The evidence is for the answer and the runner-up, each adding up to its logit.
    first, second = explanation["evidence"]
    assert first["digit"] == answer["digit"]
    assert second["digit"] == int(np.argsort(logits)[-2])
    for terms in (first, second):
        total = np.sum(terms["pixels"]) + terms["hidden_bias"] + terms["output_bias"]
        assert total == pytest.approx(logits[terms["digit"]], abs=1e-4)
        assert np.shape(terms["pixels"]) == (28, 28)


def test_hidden_units_are_the_real_activations(
    client: TestClient, mnist: MnistData, committed_model_path: Path
) -> None:
    classifier = load_classifier(committed_model_path)
    pixels = np.array(pixels_of(mnist, 0), dtype=np.float32)
    explanation = client.post(
        "/api/predict/pixels?explain=true", json={"pixels": pixels.tolist()}
    ).json()["explanation"]
    hidden = np.maximum(pixels @ classifier.hidden_weights + classifier.hidden_bias, 0)
    np.testing.assert_allclose(explanation["hidden"], hidden, atol=1e-4)
    assert explanation["active_units"] == np.count_nonzero(hidden)
    units = explanation["units"]
    assert [unit["contribution"] for unit in units] == sorted(
        (unit["contribution"] for unit in units), reverse=True
    )
    for unit in units:
        # Its contribution is its activation through its weight to the answer, and its
        # weights are its column of W1, what it looks for.
        expected = hidden[unit["unit"]] * classifier.output_weights[unit["unit"], 7]
        assert unit["contribution"] == pytest.approx(expected, abs=1e-3)
        np.testing.assert_allclose(
            np.ravel(unit["weights"]), classifier.hidden_weights[:, unit["unit"]], atol=1e-4
        )


def test_a_drawing_is_explained_too(client: TestClient, seven_png: bytes) -> None:
    response = client.post("/api/predict?explain=true", content=seven_png, headers=PNG)
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    # Written by orjson, not by the route's response model: it still has the documented form.
    Prediction.model_validate(answer, strict=True)
    assert answer["digit"] == 7
    first = answer["explanation"]["evidence"][0]
    # The pixels that argued for the 7 are the drawing's strokes: blank ones add nothing.
    assert np.count_nonzero(first["pixels"]) < 0.4 * 784
    assert "explanation" not in client.post("/api/predict", content=seven_png, headers=PNG).json()


def test_the_books_recipe_is_served_beside_the_default(client: TestClient) -> None:
    models = {model["name"]: model for model in client.get("/api/models").json()}
    assert set(models) == {"default", "seed"}
    assert models["seed"]["card"]["training"]["preset"] == "seed"
    assert models["default"]["card"]["training"]["preset"] == "default"
    response = client.post("/api/predict/pixels?model=book", json={"pixels": [0.0] * 784})
    assert response.status_code == 422


@pytest.mark.training
def test_the_seed_models_answers_equal_keras_own(
    client: TestClient, mnist: MnistData, committed_seed_model_path: Path
) -> None:
    import keras  # noqa: PLC0415 - only the tests that compare with Keras import it

    model = keras.saving.load_model(committed_seed_model_path)
    for index in range(10):
        pixels = pixels_of(mnist, index)
        served = client.post("/api/predict/pixels?model=seed", json={"pixels": pixels}).json()
        expected = model.predict(np.array([pixels], dtype=np.float32), verbose=0)[0]
        np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)


def test_without_the_seed_file_only_the_default_is_served(tmp_path: Path) -> None:
    settings = Settings(seed_model_path=tmp_path / "missing.keras")
    with TestClient(create_app(settings)) as alone:
        assert [model["name"] for model in alone.get("/api/models").json()] == ["default"]
        response = alone.post("/api/predict/pixels?model=seed", json={"pixels": [0.0] * 784})
        assert response.status_code == 404
        assert response.json() == {"detail": "the model 'seed' is not served here"}
