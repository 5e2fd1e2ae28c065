"""GET /metrics in one process: requests by route template and status, the time of each
step, predictions by digit, refused inputs by reason, the model's identity, and the port it
is served on. (Several workers: tests/serving/test_server.py.)"""

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from app.serving.application import create_app
from app.serving.image_files import MAX_PNG_CHUNKS
from app.serving.model_file import read_model_card
from app.serving.settings import Settings
from app.training.data import MnistData
from app.training.drawings import DrawingStyle, render_drawing
from tests.conftest import encode
from tests.serving.test_preprocessing import png_header_only

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
PNG = {"Content-Type": "image/png"}
METRICS_PORT = 9464


def parse_samples(text: str) -> Samples:
    """Each sample of Prometheus' text format by its name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def read_samples(client: TestClient, url: str = "/metrics") -> Samples:
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST  # Prometheus' text format
    return parse_samples(response.text)


class Changes:
    """How much each sample grew between its creation and `measure()`."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.before = read_samples(client)
        self.after: Samples = {}

    def measure(self) -> None:
        self.after = read_samples(self.client)

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return self.after.get(key, 0.0) - self.before.get(key, 0.0)

    def of(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every labelled sample of `name` that changed, by its labels."""
        keys = {key for key in {*self.before, *self.after} if key[0] == name}
        changed = {labels: self(name, **dict(labels)) for _, labels in keys}
        return {labels: change for labels, change in changed.items() if change}


@pytest.fixture(scope="module")
def two(mnist: MnistData) -> bytes:
    return render_drawing(mnist.x_test[1], DrawingStyle(ink="white", background="black"))


def test_requests_are_counted_by_route_template_and_status(
    client: TestClient, seven_png: bytes
) -> None:
    change = Changes(client)
    for _ in range(2):
        assert client.post("/api/predict", content=seven_png, headers=PNG).status_code == 200
    assert client.post("/api/predict", content=b"not an image", headers=PNG).status_code == 415
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/no-such-file.js").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    assert client.put("/api/predict").status_code == 405
    assert client.request("PROPFIND", "/").status_code == 405
    change.measure()

    requests = "digit_canvas_http_requests_total"
    assert change(requests, method="POST", route="/api/predict", status="200") == 2
    assert change(requests, method="POST", route="/api/predict", status="415") == 1
    # Mounted applications by their mount, paths that match nothing by one label: the
    # labels take a few values, whatever paths clients try.
    assert change(requests, method="GET", route="/static/{path}", status="200") == 1
    assert change(requests, method="GET", route="/static/{path}", status="404") == 1
    assert change(requests, method="GET", route="unmatched", status="404") == 1
    assert change(requests, method="PUT", route="/api/predict", status="405") == 1
    assert change(requests, method="other", route="/", status="405") == 1
    latency = "digit_canvas_http_request_duration_seconds"
    assert change(f"{latency}_count", method="POST", route="/api/predict") == 3
    assert change(f"{latency}_sum", method="POST", route="/api/predict") > 0
    # Histogram buckets are cumulative: the last holds every request.
    assert change(f"{latency}_bucket", method="POST", route="/api/predict", le="+Inf") == 3


def test_predictions_by_digit_and_the_time_of_each_step(
    client: TestClient, seven_png: bytes, two: bytes, mnist: MnistData
) -> None:
    change = Changes(client)
    for image in (seven_png, seven_png, two):
        client.post("/api/predict", content=image, headers=PNG)
    # Not a canvas export: preprocessed in a process of its own.
    photo = encode(Image.open(io.BytesIO(two)), "JPEG")
    assert client.post("/api/predict", content=photo, headers=PNG).json()["digit"] == 2
    pixels = (mnist.x_test[1] / 255.0).round(4).ravel().tolist()
    assert client.post("/api/predict/pixels", json={"pixels": pixels}).json()["digit"] == 2
    batch = [("files", ("a.png", seven_png)), ("files", ("b.png", two))]
    assert client.post("/api/predict/batch", files=batch).status_code == 200
    change.measure()

    assert change.of("digit_canvas_predictions_total") == {
        frozenset({("digit", "7")}): 3,
        frozenset({("digit", "2")}): 4,
    }
    preprocessing = "digit_canvas_preprocessing_seconds_count"
    assert change(preprocessing, where="inline") == 5
    assert change(preprocessing, where="isolated") == 1
    # One forward pass per request: the batch's two images go through it together.
    assert change("digit_canvas_inference_seconds_count") == 6
    assert 0 < change("digit_canvas_inference_seconds_sum") < 1


def costly_png(seven_png: bytes) -> bytes:
    """The canvas with thousands of empty text chunks before its end."""
    empty_chunk = b"\x00\x00\x00\x00tEXt\x00\x00\x00\x00"
    return seven_png[:-12] + empty_chunk * (MAX_PNG_CHUNKS + 1) + seven_png[-12:]


def test_refused_inputs_are_counted_by_status_and_reason(
    client: TestClient, seven_png: bytes
) -> None:
    blank = encode(Image.new("RGB", (280, 280), "white"))
    change = Changes(client)
    refusals = [
        ({"content": b"not an image", "headers": PNG}, 415),
        ({"content": blank, "headers": PNG}, 422),
        ({"content": png_header_only(20000, 20000), "headers": PNG}, 413),
        ({"content": costly_png(seven_png), "headers": PNG}, 422),
        ({"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415),
        ({"content": b"\x89PNG" + bytes(11 * 1024 * 1024), "headers": PNG}, 413),
        ({"files": [("file", ("a.png", seven_png)), ("file", ("b.png", seven_png))]}, 400),
    ]
    for request, status in refusals:
        assert client.post("/api/predict", **request).status_code == status
    pixels = client.post("/api/predict/pixels", json={"pixels": [0.5] * 10})
    assert pixels.status_code == 422
    assert client.post("/api/predict/pixels", json={"pixels": "no"}).status_code == 422
    batch = [("files", ("a.png", seven_png)), ("files", ("b.png", blank))]
    assert client.post("/api/predict/batch", files=batch).status_code == 200
    assert client.get("/no/such/path").status_code == 404  # not an input: not counted
    change.measure()

    assert change.of("digit_canvas_rejected_inputs_total") == {
        frozenset({("status", "415"), ("reason", "unsupported_image")}): 1,
        frozenset({("status", "422"), ("reason", "empty_drawing")}): 2,  # one in the batch
        frozenset({("status", "413"), ("reason", "image_too_large")}): 1,
        frozenset({("status", "422"), ("reason", "costly_decoding")}): 1,
        frozenset({("status", "415"), ("reason", "unsupported_content_type")}): 1,
        frozenset({("status", "413"), ("reason", "too_large")}): 1,
        frozenset({("status", "400"), ("reason", "unparsable_body")}): 1,
        frozenset({("status", "422"), ("reason", "invalid_request")}): 2,
    }


def test_the_served_model_is_named_by_its_card(client: TestClient, committed_model_path):
    card = read_model_card(committed_model_path)
    identity = frozenset(
        {
            ("name", card["name"]),
            ("sha256", card["file"]["sha256"]),
            ("created", card["created"]),
        }
    )
    assert read_samples(client)[("digit_canvas_model_info", identity)] == 1


def test_the_metrics_port_alone_serves_metrics(committed_model_path) -> None:
    settings = Settings(model_path=committed_model_path, metrics_port=METRICS_PORT)
    app = create_app(settings)
    # The port a request came in on is the server's, in its ASGI scope.
    with (
        TestClient(app) as public,
        TestClient(app, base_url=f"http://testserver:{METRICS_PORT}") as private,
    ):
        assert public.get("/healthz").status_code == 200
        hidden = public.get("/metrics")
        assert hidden.status_code == 404
        assert hidden.json() == {"detail": "Not Found"}
        assert "digit_canvas_model_info" in private.get("/metrics").text
        assert private.get("/healthz").status_code == 404
        assert private.get("/").status_code == 404
        # Refused requests are counted too, under no route.
        samples = read_samples(private)
    assert samples[("digit_canvas_http_requests_total", unmatched_404())] >= 3


def unmatched_404() -> frozenset[tuple[str, str]]:
    return frozenset({("method", "GET"), ("route", "unmatched"), ("status", "404")})


def test_the_metrics_port_must_differ_from_the_public_one() -> None:
    with pytest.raises(ValidationError, match="must differ from the public port"):
        Settings(port=8000, metrics_port=8000)


def test_one_process_shows_its_own_metrics_on_the_public_port(client: TestClient) -> None:
    samples = read_samples(client)
    # The scrape itself is the one request in progress.
    assert samples[("digit_canvas_http_requests_in_progress", frozenset())] == 1
    # The standard metrics of the process, which several workers do not have.
    assert samples[("process_resident_memory_bytes", frozenset())] > 0
