"""Request ids and JSON logs: an id on every response, the client's when it is valid; one
JSON line per request with no image data; start-up, errors and gunicorn's own lines in the
same format with one worker and with two; uvicorn's readable text by default."""

import http.client
import json
import logging
import re
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.serving.application import create_app
from app.serving.json_logs import JsonFormatter
from app.serving.request_logs import REQUEST_LOGGER
from app.serving.settings import Settings
from tests.conftest import running_server
from tests.serving.test_server import wait_for

PNG = {"Content-Type": "image/png"}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    "request_id",
    ["abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "dGVzdA==", "a:b/c+d_e.f", "x" * 128],
)
def test_a_valid_request_id_comes_back(client: TestClient, request_id: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize(
    "request_id", ["", "x" * 129, "two words", "<script>", "a;b", "caf\xe9".encode("latin-1")]
)
def test_an_invalid_request_id_is_replaced(client: TestClient, request_id: str | bytes) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": request_id})
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


def test_every_answer_has_an_id_of_its_own(client: TestClient, seven_png: bytes) -> None:
    responses = [
        client.post("/api/predict", content=seven_png, headers=PNG),
        client.post("/api/predict", content=b"not an image", headers=PNG),
        client.post("/api/predict", content=b"\x89PNG" + bytes(11 * 1024 * 1024), headers=PNG),
        client.get("/no/such/path"),
        client.get("/static/app.js"),
    ]
    assert [response.status_code for response in responses] == [200, 415, 413, 404, 200]
    ids = [response.headers["x-request-id"] for response in responses]
    assert all(GENERATED_ID.fullmatch(request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    """The request lines logged, as JsonFormatter writes them."""
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == REQUEST_LOGGER
    ]


def test_json_logs_have_one_line_per_request_without_image_data(
    committed_model_path: Path, seven_png: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(model_path=committed_model_path, log_format="json")
    with TestClient(create_app(settings)) as json_client, caplog.at_level(logging.INFO):
        answered = json_client.post(
            "/api/predict?include_input=true",
            content=seven_png,
            headers={**PNG, "X-Request-ID": "drawn-7"},
        )
        refused = json_client.post("/api/predict", content=b"secret text", headers=PNG)
        lines = request_lines(caplog)
    assert [line["status"] for line in lines] == [200, 415]
    first, second = lines
    assert first["request_id"] == "drawn-7" == answered.headers["x-request-id"]
    assert second["request_id"] == refused.headers["x-request-id"]
    assert {key: first[key] for key in ("method", "path", "status", "client")} == {
        "method": "POST",
        "path": "/api/predict",
        "status": 200,
        "client": "testclient",
    }
    assert first["message"] == "POST /api/predict 200"
    assert first["level"] == "INFO"
    assert first["logger"] == REQUEST_LOGGER
    assert 0 < first["duration_ms"] < 10_000
    # Neither the image nor the query string, nor a refused body.
    text = json.dumps(lines)
    assert "include_input" not in text
    assert "secret" not in text
    assert len(text) < 1000


def test_text_logs_leave_the_request_line_to_uvicorn(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        client.get("/healthz")
    assert not request_lines(caplog)


def test_an_error_is_one_json_line_with_its_traceback() -> None:
    try:
        raise RuntimeError("the model file vanished")
    except RuntimeError:
        record = logging.LogRecord(
            "uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application", None,
            sys.exc_info(),
        )  # fmt: skip
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["message"] == "Exception in ASGI application"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("RuntimeError: the model file vanished")


def started_applications(path: Path) -> int:
    """How many of the server's processes have logged that their application started."""
    return path.read_text().count('"message": "Application startup complete."')


def read_json_lines(path: Path) -> list[dict]:
    """Every line of the file, each of which must be a JSON object."""
    lines = path.read_text().splitlines()
    assert lines
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
    return entries


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_real_server_logs_json_from_start_to_stop(
    workers: str, tmp_path: Path, seven_png: bytes
) -> None:
    output = tmp_path / "server.log"
    settings = {"WORKERS": workers, "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    with running_server(output=output, **settings) as server:
        # Gunicorn's workers listen before their application has started: wait for the logs.
        wait_for(lambda: started_applications(output) == int(workers), "every worker's application")
        connection = http.client.HTTPConnection(f"127.0.0.1:{server.port}", timeout=30)
        headers = {**PNG, "X-Request-ID": "from-the-balancer-1"}
        connection.request("POST", "/api/predict", body=seven_png, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
    assert response.getheader("X-Request-ID") == "from-the-balancer-1"
    entries = read_json_lines(output)
    messages = [entry["message"] for entry in entries]
    assert messages.count("Application startup complete.") == int(workers), messages
    assert messages.count("Application shutdown complete.") == int(workers), messages
    tagged = [entry for entry in entries if entry.get("request_id") == "from-the-balancer-1"]
    assert len(tagged) == 1, tagged
    [request] = tagged
    assert request["status"] == 200
    assert request["path"] == "/api/predict"
    loggers = {entry["logger"] for entry in entries}
    if workers == "2":
        assert "gunicorn.error" in loggers  # the arbiter's own lines
        assert any(message.startswith("Booting worker") for message in messages)
    assert not [entry for entry in entries if entry["level"] in ("WARNING", "ERROR")], entries


@pytest.mark.slow
def test_the_real_server_writes_readable_text_by_default(tmp_path: Path) -> None:
    output = tmp_path / "server.log"
    with running_server(output=output, LOG_LEVEL="info") as server:
        connection = http.client.HTTPConnection(f"127.0.0.1:{server.port}", timeout=30)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        connection.close()
    assert GENERATED_ID.fullmatch(response.getheader("X-Request-ID"))
    text = output.read_text()
    assert "INFO:     Application startup complete." in text
    assert '"GET /healthz HTTP/1.1" 200' in text  # uvicorn's access line
    assert "{" not in text
