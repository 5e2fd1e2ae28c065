"""Corrections: stored safely in SQLite and in a real PostgreSQL server, through the API,
with nothing acknowledged ever lost, and with limits that keep the table from flooding."""

import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.orm import Session

from app.paths import PROJECT_ROOT
from app.serving.application import create_app
from app.serving.corrections import NewCorrection, StoreUnavailableError
from app.serving.corrections.store import open_store
from app.serving.corrections.tables import Correction
from app.serving.settings import Settings
from tests.conftest import free_port, running_server, wait_until_ready


def correction(label: int, model_digit: int, sha256: str = "a" * 64) -> NewCorrection:
    return NewCorrection(
        created_at=datetime.now(UTC),
        label=label,
        model_input=bytes(784),
        model_digit=model_digit,
        probabilities=[0.1] * 10,
        model_sha256=sha256,
    )


def rows(url: str) -> list[Correction]:
    with Session(create_engine(url)) as session:
        return list(session.scalars(select(Correction).order_by(Correction.id)))


def test_the_store_keeps_counts_and_the_served_models_accuracy(store_url: str) -> None:
    store = open_store(store_url, max_rows=100)
    store.migrate()  # again: nothing to do
    ids = [store.add(correction(label, digit)) for label, digit in [(4, 4), (4, 9), (1, 7)]]
    store.add(correction(7, 7, sha256="b" * 64))  # answered by another model
    assert ids == sorted(ids) and len(set(ids)) == 3
    stats = store.stats("a" * 64)
    assert stats.total == 4
    assert stats.per_label == [0, 1, 0, 0, 2, 0, 0, 1, 0, 0]
    assert (stats.by_served_model, stats.served_model_right) == (3, 1)
    assert [row.label for row in store.all()] == [4, 4, 1, 7]
    store.close()


def test_processes_starting_together_migrate_once(store_url: str) -> None:
    # Replicas or workers that start together each migrate: one at a time, no error.
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: open_store(store_url, max_rows=10), range(4)))
    stores[0].add(correction(3, 3))
    assert stores[1].stats("a" * 64).total == 1
    for store in stores:
        store.close()


def test_a_full_store_refuses_more(store_url: str) -> None:
    store = open_store(store_url, max_rows=2)
    store.add(correction(1, 1))
    store.add(correction(2, 2))
    for label in (3, 4):  # and again: a refused correction leaves no row behind
        with pytest.raises(StoreUnavailableError, match=r"full \(2 corrections\)"):
            store.add(correction(label, label))
    assert [row.label for row in store.all()] == [1, 2]
    store.close()


def test_writers_at_once_never_pass_the_cap(store_url: str) -> None:
    store = open_store(store_url, max_rows=20)

    def accepted(label: int) -> bool:
        try:
            store.add(correction(label, label))
        except StoreUnavailableError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(accepted, [attempt % 10 for attempt in range(40)]))
    assert answers.count(True) == 20
    assert len(list(store.all())) == 20
    store.close()


@pytest.fixture
def corrections_client(store_url: str) -> TestClient:
    settings = Settings(database_url=store_url, corrections_per_minute=100)
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_correction_is_stored_with_the_servers_own_input(
    corrections_client: TestClient, store_url: str, seven_png: bytes
) -> None:
    response = corrections_client.post(
        "/api/feedback",
        files={"file": ("seven.png", seven_png, "image/png")},
        data={
            "label": "1",
            "predicted": "7",
            "pointer_type": "touch",
            "canvas_width": "560",
            "canvas_height": "560",
        },
    )
    assert response.status_code == 201
    [stored] = rows(store_url)
    assert response.json() == {"id": stored.id}
    assert (stored.label, stored.model_digit, stored.claimed_prediction) == (1, 7, 7)
    assert (stored.pointer_type, stored.canvas_width, stored.canvas_height) == ("touch", 560, 560)
    pixels = np.frombuffer(stored.model_input, dtype=np.uint8).reshape(28, 28)
    assert pixels.max() == 255 and pixels[0].max() == 0  # a digit in MNIST's form
    assert sum(stored.probabilities) == pytest.approx(1.0, abs=1e-4)
    assert len(stored.model_sha256) == 64
    assert stored.image is None  # the drawing itself is not kept by default
    stats = corrections_client.get("/api/feedback/stats").json()
    assert stats["total"] == 1 and stats["per_label"][1] == 1
    assert stats["served_model"] | {"sha256": None} == {
        "sha256": None,
        "corrections": 1,
        "right": 0,
        "accuracy": 0.0,
    }


def test_the_drawing_is_kept_only_when_the_setting_says_so(
    tmp_path: Path, seven_png: bytes
) -> None:
    url = f"sqlite:///{tmp_path / 'corrections.sqlite3'}"
    with TestClient(create_app(Settings(database_url=url, keep_uploaded_images=True))) as client:
        client.post("/api/feedback", files={"file": ("7.png", seven_png)}, data={"label": "7"})
    assert rows(url)[0].image == seven_png


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"label": "10"}, 422),
        ({"label": "x"}, 422),
        ({}, 422),
        ({"label": "4", "predicted": "-1"}, 422),
    ],
)
def test_bad_corrections_are_refused(
    tmp_path: Path, seven_png: bytes, data: dict[str, str], status: int
) -> None:
    url = f"sqlite:///{tmp_path / 'corrections.sqlite3'}"
    with TestClient(create_app(Settings(database_url=url))) as client:
        response = client.post("/api/feedback", files={"file": ("7.png", seven_png)}, data=data)
        not_an_image = client.post(
            "/api/feedback", files={"file": ("a.txt", b"four")}, data={"label": "4"}
        )
    assert response.status_code == status
    assert not_an_image.status_code == 415
    assert not Path(url.removeprefix("sqlite:///")).exists() or rows(url) == []


def test_a_client_correcting_too_fast_is_told_when_to_retry(tmp_path: Path, seven_png: bytes):
    url = f"sqlite:///{tmp_path / 'corrections.sqlite3'}"
    with TestClient(create_app(Settings(database_url=url, corrections_per_minute=3))) as client:
        statuses = [
            client.post("/api/feedback", files={"file": ("7.png", seven_png)}, data={"label": "7"})
            for _ in range(4)
        ]
    assert [response.status_code for response in statuses] == [201, 201, 201, 429]
    assert 1 <= int(statuses[-1].headers["Retry-After"]) <= 60
    assert len(rows(url)) == 3


@pytest.mark.parametrize("trouble", ["read-only", "full"])
def test_a_store_that_cannot_write_answers_503(
    tmp_path: Path, seven_png: bytes, trouble: str
) -> None:
    path = tmp_path / "corrections.sqlite3"
    open_store(f"sqlite:///{path}", max_rows=10).close()
    if trouble == "read-only":
        store = open_store(f"sqlite:///file:{path}?mode=ro&uri=true", max_rows=10)
    else:  # the database may not grow by a page: as when the disk is full
        store = open_store(f"sqlite:///{path}", max_rows=10)
        with store.engine.connect() as connection:
            pages = connection.execute(text("PRAGMA page_count")).scalar()
        event.listen(
            store.engine,
            "connect",
            lambda connection, _: connection.execute(f"PRAGMA max_page_count={pages}"),
        )
        store.engine.dispose()  # the connections to come have the limit
    # The drawing kept too: more than the free space of the database's last page.
    settings = Settings(database_url=f"sqlite:///{path}", keep_uploaded_images=True)
    with TestClient(create_app(settings)) as client:
        client.app.state.store = store
        response = client.post(
            "/api/feedback", files={"file": ("7.png", seven_png)}, data={"label": "7"}
        )
    assert response.status_code == 503
    assert response.json()["detail"].startswith("the corrections store cannot take it now")
    assert rows(f"sqlite:///{path}") == []


def post_correction(
    url: str, png: bytes, label: int, headers: dict[str, str] | None = None
) -> int | None:
    """The id of a correction the server acknowledged (201), or None."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="label"\r\n\r\n{label}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{url}/api/feedback",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return (
                int(response.read().split(b":")[1].strip(b"}")) if response.status == 201 else None
            )
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def start_server(database_url: str, workers: str = "1") -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": workers,
        "LOG_LEVEL": "warning",
        "DIGIT_CANVAS_DATABASE_URL": database_url,
        "DIGIT_CANVAS_CORRECTIONS_PER_MINUTE": "100000",
    }
    process = subprocess.Popen([sys.executable, "-m", "app.serve"], cwd=PROJECT_ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url, process)
    return process, url


@pytest.mark.slow
def test_no_acknowledged_correction_is_lost_when_the_server_is_killed(
    tmp_path: Path, seven_png: bytes
) -> None:
    database = f"sqlite:///{tmp_path / 'corrections.sqlite3'}"
    server, url = start_server(database)
    acknowledged: list[int] = []
    killed = threading.Event()

    def write() -> None:
        for _ in range(200):
            if (stored := post_correction(url, seven_png, 7)) is not None:
                acknowledged.append(stored)
                if len(acknowledged) == 100:
                    server.send_signal(signal.SIGKILL)  # at once after an answer
                    killed.set()
            elif killed.is_set():
                return

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(timeout=120)
    server.wait(timeout=30)
    assert killed.is_set() and len(acknowledged) >= 100
    # Started again on the same database: every acknowledged correction is there.
    server, url = start_server(database)
    try:
        assert set(acknowledged) <= {row.id for row in rows(database)}
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_two_workers_write_side_by_side(store_url: str, seven_png: bytes) -> None:
    server, url = start_server(store_url, workers="2")
    try:
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda n: post_correction(url, seven_png, n % 10), range(60)))
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert None not in ids and len(set(ids)) == 60
    assert sorted(row.label for row in rows(store_url)) == sorted(n % 10 for n in range(60))


@pytest.mark.slow
@pytest.mark.parametrize("trusted", [True, False])
def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    tmp_path: Path, seven_png: bytes, trusted: bool
) -> None:
    # A load balancer sends every client's corrections from its own address: with its
    # X-Forwarded-For trusted, the limit is per client; untrusted, the header is ignored.
    settings = {
        "DIGIT_CANVAS_DATABASE_URL": f"sqlite:///{tmp_path / 'corrections.sqlite3'}",
        "DIGIT_CANVAS_CORRECTIONS_PER_MINUTE": "1",
    }
    if trusted:
        settings["DIGIT_CANVAS_FORWARDED_ALLOW_IPS"] = "127.0.0.1"
    with running_server(**settings) as server:
        acknowledged = [
            post_correction(server.url, seven_png, 7, {"X-Forwarded-For": client}) is not None
            for client in ("203.0.113.1", "203.0.113.2", "203.0.113.1")
        ]
    assert acknowledged == ([True, True, False] if trusted else [True, False, False])
