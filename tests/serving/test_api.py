"""The REST API with the committed model: every endpoint's success path and every error."""

import io
from typing import get_args

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.serving.application import create_app
from app.serving.isolation import ServiceBusyError
from app.serving.preprocessing import PreprocessError
from app.serving.schemas import RefusalReason
from app.serving.settings import Settings
from app.training.data import MnistData
from app.training.drawings import DrawingStyle, render_drawing
from tests.conftest import encode
from tests.serving.test_metrics import costly_png
from tests.serving.test_preprocessing import png_header_only


@pytest.fixture(scope="module")
def seven(seven_png: bytes) -> bytes:
    return seven_png


@pytest.fixture(scope="module")
def two(mnist: MnistData) -> bytes:
    return render_drawing(mnist.x_test[1], DrawingStyle(ink="white", background="black"))


def assert_prediction(body: dict, digit: int) -> None:
    assert body["digit"] == digit
    assert len(body["probabilities"]) == 10
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert body["confidence"] == max(body["probabilities"])
    assert body["probabilities"].index(body["confidence"]) == digit


def test_predict_multipart_file(client: TestClient, seven: bytes) -> None:
    response = client.post("/api/predict", files={"file": ("seven.png", seven, "image/png")})
    assert response.status_code == 200
    assert_prediction(response.json(), 7)
    assert "input" not in response.json()


def test_text_fields_beside_the_file_are_ignored(client: TestClient, seven: bytes) -> None:
    # An HTML form or a script may send more than the image: text fields.
    response = client.post(
        "/api/predict",
        data={"note": "my seven", "file_name": "x"},
        files={"file": ("seven.png", seven, "image/png")},
    )
    assert response.status_code == 200, response.text
    assert_prediction(response.json(), 7)


def test_predict_raw_body(client: TestClient, two: bytes) -> None:
    response = client.post("/api/predict", content=two, headers={"Content-Type": "image/png"})
    assert response.status_code == 200
    assert_prediction(response.json(), 2)


def test_predict_returns_the_input_the_model_saw(client: TestClient, seven: bytes) -> None:
    response = client.post(
        "/api/predict?include_input=true", content=seven, headers={"Content-Type": "image/png"}
    )
    model_input = np.array(response.json()["input"])
    assert model_input.shape == (28, 28)
    assert model_input.min() == 0.0
    assert model_input.max() > 0.9
    # White strokes on black, centred: the border is background.
    assert model_input[0].max() == model_input[-1].max() == 0.0


def test_pixels_flat_and_nested(client: TestClient, mnist: MnistData) -> None:
    pixels = (mnist.x_test[1] / 255.0).round(4)
    for payload in (pixels.ravel().tolist(), pixels.tolist()):
        response = client.post("/api/predict/pixels", json={"pixels": payload})
        assert response.status_code == 200
        assert_prediction(response.json(), int(mnist.y_test[1]))


def test_batch_keeps_order_and_reports_bad_images_alone(
    client: TestClient, seven: bytes, two: bytes
) -> None:
    files = [
        ("files", ("a.png", two, "image/png")),
        ("files", ("b.txt", b"not an image", "text/plain")),
        ("files", ("c.png", seven, "image/png")),
        ("files", ("d.png", encode(Image.new("L", (50, 50), 255)), "image/png")),
    ]
    response = client.post("/api/predict/batch?include_input=true", files=files)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["filename"] for result in results] == ["a.png", "b.txt", "c.png", "d.png"]
    assert_prediction(results[0]["prediction"], 2)
    assert results[1]["error"]["status"] == 415
    assert_prediction(results[2]["prediction"], 7)
    assert len(results[2]["prediction"]["input"]) == 28
    assert results[3]["error"] == {
        "status": 422,
        "detail": "the drawing is empty: no strokes stand out from the background",
        "reason": "empty_drawing",
    }


def test_batch_matches_single_predictions(client: TestClient, seven: bytes, two: bytes):
    single = [
        client.post("/api/predict", content=image, headers={"Content-Type": "image/png"}).json()
        for image in (seven, two)
    ]
    batch = client.post(
        "/api/predict/batch", files=[("files", ("7", seven)), ("files", ("2", two))]
    ).json()
    for one, result in zip(single, batch["results"], strict=True):
        np.testing.assert_allclose(
            result["prediction"]["probabilities"], one["probabilities"], atol=1e-6
        )


def test_model_card(client: TestClient) -> None:
    card = client.get("/api/model").json()
    assert card["architecture"]["parameters"] == 407050
    assert card["evaluation"]["test_accuracy"] >= 0.978


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_not_ready_before_the_model_is_loaded(committed_model_path) -> None:
    app = create_app(Settings(model_path=committed_model_path))
    # Without `with`, the lifespan has not run: the process is alive but not ready.
    unstarted = TestClient(app)
    assert unstarted.get("/healthz").status_code == 200
    response = unstarted.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"detail": "the model is not loaded"}


def test_openapi_docs_describe_both_upload_forms(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/*"} <= body.keys()
    assert "examples" in schema["components"]["schemas"]["Prediction"]


def test_cors_origins_from_settings(committed_model_path, seven: bytes) -> None:
    settings = Settings(model_path=committed_model_path, cors_origins="https://a.example")
    with TestClient(create_app(settings)) as cors_client:
        allowed = cors_client.post(
            "/api/predict",
            content=seven,
            headers={"Content-Type": "image/png", "Origin": "https://a.example"},
        )
        other = cors_client.post(
            "/api/predict",
            content=seven,
            headers={"Content-Type": "image/png", "Origin": "https://b.example"},
        )
    assert allowed.headers["access-control-allow-origin"] == "https://a.example"
    assert "access-control-allow-origin" not in other.headers


def zip_bomb_png() -> bytes:
    """36 megapixels of white in a few kilobytes."""
    return encode(Image.new("L", (6000, 6000), 255), optimize=True)


def truncated_png(seven: bytes) -> bytes:
    return seven[: len(seven) // 2]


PNG = {"Content-Type": "image/png"}
JSON = {"Content-Type": "application/json"}
HOSTILE = {
    # name: (path, request keyword arguments, expected status, words in the detail)
    "random bytes": ("/api/predict", {"content": bytes(range(256)) * 8, "headers": PNG}, 415),
    "truncated PNG": ("/api/predict", {"content": "truncated", "headers": PNG}, 415),
    "1x1 PNG": ("/api/predict", {"content": encode(Image.new("L", (1, 1))), "headers": PNG}, 422),
    "20000x20000 header": (
        "/api/predict",
        {"content": png_header_only(20000, 20000), "headers": PNG},
        413,
    ),
    "zip bomb PNG": ("/api/predict", {"content": "zip bomb", "headers": PNG}, 413),
    "wrong content type": (
        "/api/predict",
        {"content": b"hello", "headers": {"Content-Type": "text/plain"}},
        415,
    ),
    "no content type": ("/api/predict", {"content": b"hello"}, 415),
    "empty body": ("/api/predict", {"content": b"", "headers": PNG}, 415),
    "SVG": (
        "/api/predict",
        {"content": b"<svg/>", "headers": {"Content-Type": "image/svg+xml"}},
        415,
    ),
    "body over the limit": (
        "/api/predict",
        {"content": b"\x89PNG" + bytes(11 * 1024 * 1024), "headers": PNG},
        413,
    ),
    "multipart without the file field": (
        "/api/predict",
        {"files": {"image": ("a.png", b"x", "image/png")}},
        422,
    ),
    "multipart with a text field named file": ("/api/predict", {"data": {"file": "7"}}, 422),
    "malformed multipart": (
        "/api/predict",
        {
            "content": b"--b\r\nContent-Type: text/plain\r\n\r\nno name\r\n--b--\r\n",
            "headers": {"Content-Type": "multipart/form-data; boundary=b"},
        },
        400,
    ),
    "multipart field name not UTF-8": (
        "/api/predict",
        {
            "content": b'--b\r\nContent-Disposition: form-data; name="\xff"; filename="a"\r\n'
            b"\r\nx\r\n--b--\r\n",
            "headers": {"Content-Type": "multipart/form-data; boundary=b"},
        },
        422,
    ),
    "multipart without a boundary": (
        "/api/predict",
        {"content": b"--b--\r\n", "headers": {"Content-Type": "multipart/form-data"}},
        400,
    ),
    "two files for one": (
        "/api/predict",
        {"files": [("file", ("a.png", b"1")), ("file", ("b.png", b"2"))]},
        400,
    ),
    "batch without files": ("/api/predict/batch", {"files": {"x": ("a", b"1")}}, 422),
    "batch over the image limit": (
        "/api/predict/batch",
        {"files": [("files", (f"{i}.png", b"1")) for i in range(65)]},
        413,
    ),
    "785 pixels": ("/api/predict/pixels", {"json": {"pixels": [0.5] * 785}}, 413),
    "783 pixels": ("/api/predict/pixels", {"json": {"pixels": [0.5] * 783}}, 422),
    "27 rows": ("/api/predict/pixels", {"json": {"pixels": [[0.5] * 28] * 27}}, 422),
    "29 rows": ("/api/predict/pixels", {"json": {"pixels": [[0.5] * 28] * 29}}, 413),
    "ragged rows": (
        "/api/predict/pixels",
        {"json": {"pixels": [[0.5] * 27, *[[0.5] * 28] * 27]}},
        422,
    ),
    "NaN": (
        "/api/predict/pixels",
        {"content": b'{"pixels": [NaN' + b", 0" * 783 + b"]}", "headers": JSON},
        422,
    ),
    "Infinity": (
        "/api/predict/pixels",
        {"content": b'{"pixels": [Infinity' + b", 0" * 783 + b"]}", "headers": JSON},
        422,
    ),
    "pixel above 1": ("/api/predict/pixels", {"json": {"pixels": [2.0] + [0.0] * 783}}, 422),
    "pixel as text": ("/api/predict/pixels", {"json": {"pixels": ["a"] + [0.0] * 783}}, 422),
    "no pixels field": ("/api/predict/pixels", {"json": {"pixel": []}}, 422),
    "malformed JSON": ("/api/predict/pixels", {"content": b'{"pixels": [', "headers": JSON}, 422),
    "huge pixels body": (
        "/api/predict/pixels",
        {"content": b'{"pixels": [' + b"0," * 500_000 + b"0]}", "headers": JSON},
        413,
    ),
    "pixel as a numeric string": (
        "/api/predict/pixels",
        {"json": {"pixels": ["0.5"] + [0.0] * 783}},
        422,
    ),
    "pixel as a boolean": ("/api/predict/pixels", {"json": {"pixels": [True] + [0.0] * 783}}, 422),
    "JSON not UTF-8": (
        "/api/predict/pixels",
        {"content": b'{"pixels": [\xff]}', "headers": JSON},
        400,
    ),
    "multipart boundary of 300 characters": (
        "/api/predict",
        {
            "content": b"--" + b"b" * 300 + b"\r\nContent-Disposition: form-data; "
            b'name="file"; filename="a.png"\r\n\r\nx\r\n--' + b"b" * 300 + b"--\r\n",
            "headers": {"Content-Type": "multipart/form-data; boundary=" + "b" * 300},
        },
        400,
    ),
    "file sent with filename* only (RFC 2231)": (
        "/api/predict",
        {
            "content": b'--b\r\nContent-Disposition: form-data; name="file"; '
            b"filename*=UTF-8''%E2%9C%93.png\r\nContent-Type: image/png\r\n\r\n"
            b"\x89PNG\r\n--b--\r\n",
            "headers": {"Content-Type": "multipart/form-data; boundary=b"},
        },
        422,
    ),
    "bad query parameter": (
        "/api/predict?include_input=maybe",
        {"content": b"x", "headers": PNG},
        422,
    ),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_gets_a_clear_client_error(
    client: TestClient, seven: bytes, name: str
) -> None:
    path, request, status = HOSTILE[name]
    if request.get("content") == "truncated":
        request = {**request, "content": truncated_png(seven)}
    if request.get("content") == "zip bomb":
        request = {**request, "content": zip_bomb_png()}
    response = client.post(path, **request)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) <= {"detail", "reason"}
    assert isinstance(body["detail"], str)
    assert 10 < len(body["detail"]) < 400
    assert "Traceback" not in body["detail"]


REFUSALS = {
    # image: (status, reason)
    "blank canvas": (422, "empty_drawing"),
    "thousands of chunks": (422, "costly_decoding"),
    "not an image": (415, "unsupported_image"),
    "20000x20000": (413, "image_too_large"),
}


def test_every_refusal_has_a_reason_the_schema_declares() -> None:
    # The schema lists the refusals' words; one it lacks would fail a batch's validation (500).
    refusals = [ServiceBusyError, PreprocessError, *PreprocessError.__subclasses__()]
    assert {refusal.reason for refusal in refusals} == set(get_args(get_args(RefusalReason)[0]))


@pytest.mark.parametrize("image", REFUSALS)
@pytest.mark.parametrize("path", ["/api/predict", "/api/read"])
def test_a_refused_image_says_why_in_a_word(
    client: TestClient, seven: bytes, path: str, image: str
) -> None:
    # A page or program can tell "draw more" (empty_drawing) from "send another image".
    content = {
        "blank canvas": encode(Image.new("LA", (280, 280))),
        "thousands of chunks": costly_png(seven),
        "not an image": b"GIF89a" + bytes(100),
        "20000x20000": png_header_only(20000, 20000),
    }[image]
    status, reason = REFUSALS[image]
    response = client.post(path, content=content, headers=PNG)
    assert (response.status_code, response.json()["reason"]) == (status, reason)
    batch = client.post("/api/predict/batch", files=[("files", ("a.png", content))])
    assert batch.json()["results"][0]["error"]["reason"] == reason


def test_server_keeps_serving_after_hostile_input(client: TestClient, seven: bytes) -> None:
    for path, request, _ in HOSTILE.values():
        if isinstance(request.get("content"), bytes) and len(request["content"]) < 100_000:
            client.post(path, **request)
    response = client.post("/api/predict", content=seven, headers=PNG)
    assert response.status_code == 200
    assert_prediction(response.json(), 7)


def test_a_file_sent_as_a_text_field_is_explained(client: TestClient) -> None:
    path, request, _ = HOSTILE["file sent with filename* only (RFC 2231)"]
    detail = client.post(path, **request).json()["detail"]
    assert detail.startswith("file: a file was expected but a text field arrived")


def test_health_answers_head_as_well(client: TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        response = client.head(path)
        assert response.status_code == 200
        assert response.content == b""


def test_the_openapi_schema_documents_every_error(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/predict", "/api/predict/batch", "/api/predict/pixels"):
        documented = set(paths[path]["post"]["responses"])
        assert {"200", "400", "408", "413", "415", "422", "503"} <= documented, path


def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    assert client.get("/api/nothing").json() == {"detail": "Not Found"}
    response = client.get("/api/predict")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}


def test_validation_errors_are_one_readable_line(client: TestClient) -> None:
    response = client.post("/api/predict/pixels", json={"pixels": [-1.0] + [0.0] * 783})
    assert response.json() == {
        "detail": "pixels.flat.0: Input should be greater than or equal to 0"
    }
    response = client.post("/api/predict/pixels", json={"pixels": "x"})
    assert response.status_code == 422
    assert "pixels" in response.json()["detail"]


def test_image_size_limit_is_configurable(committed_model_path, seven: bytes) -> None:
    settings = Settings(model_path=committed_model_path, max_image_pixels=100 * 100)
    with TestClient(create_app(settings)) as small_client:
        response = small_client.post("/api/predict", content=seven, headers=PNG)
    assert response.status_code == 413
    assert "280x280" in response.json()["detail"]


def test_photo_sized_jpeg_is_handled(client: TestClient, mnist: MnistData) -> None:
    style = DrawingStyle(canvas_size=(4000, 3000), digit_height=1500, image_format="JPEG")
    photo = render_drawing(mnist.x_test[0], style)
    assert Image.open(io.BytesIO(photo)).size == (4000, 3000)
    response = client.post("/api/predict", content=photo, headers={"Content-Type": "image/jpeg"})
    assert_prediction(response.json(), 7)
