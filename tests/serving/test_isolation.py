"""Decoding cannot freeze or balloon the server: costly file structures are refused at once,
other images are decoded in fresh processes that the kernel stops at their CPU or memory
limit, and a full queue answers 503 with Retry-After."""

import asyncio
import struct
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import Message

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.serving.image_files import MAX_JPEG_SCANS, MAX_PNG_CHUNKS, png_header
from app.serving.isolation import IsolatedPreprocessing, ServiceBusyError
from app.serving.preprocessing import ImageTooLargeError, PreprocessError
from tests.conftest import encode, running_server
from tests.serving.isolated_work import allocate, burn_cpu
from tests.serving.test_server import wait_for
from tests.serving.test_worker_metrics import scrape

PNG = {"Content-Type": "image/png"}
JPEG = {"Content-Type": "image/jpeg"}
IN_PROGRESS = "digit_canvas_http_requests_in_progress"


def chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def with_chunks_before_data(png: bytes, extra: bytes) -> bytes:
    """`png` with `extra` (whole chunks) inserted after its IHDR chunk."""
    after_header = 8 + 12 + struct.unpack_from(">I", png, 8)[0]
    return png[:after_header] + extra + png[after_header:]


def jpeg_repeating_its_first_scan(times: int) -> bytes:
    """A 320x320 progressive JPEG whose first scan is repeated `times` times: each repeat is
    decoded in full, so a few megabytes cost seconds of CPU."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (320, 320), dtype=np.uint8))
    jpeg = encode(image, "JPEG", progressive=True, quality=90)
    start = jpeg.index(b"\xff\xda")
    end = jpeg.index(b"\xff\xda", start + 2)  # the second scan begins where the first ends
    return jpeg[:end] + jpeg[start:end] * times + jpeg[end:]


def exif_with_entries(count: int) -> bytes:
    """A little-endian TIFF (EXIF) block whose first directory has `count` entries."""
    entry = struct.pack("<HHII", 0x010E, 2, 4, 0x41414141)  # ImageDescription, 4 ASCII bytes
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", count) + entry * count


@pytest.fixture(scope="module")
def grey_png() -> bytes:
    """A greyscale drawing: not a canvas export, so decoded in an isolated process."""
    image = Image.new("L", (280, 280), 255)
    image.paste(0, (130, 40, 150, 240))
    return encode(image)


def test_a_png_of_many_empty_chunks_is_refused_at_once(client: TestClient, grey_png: bytes):
    png = with_chunks_before_data(grey_png, chunk(b"prIv", b"") * 800_000)
    assert len(png) < 10 * 1024 * 1024
    started = time.perf_counter()
    response = client.post("/api/predict", content=png, headers=PNG)
    assert response.status_code == 422
    assert f"more than {MAX_PNG_CHUNKS:,} chunks" in response.json()["detail"]
    assert time.perf_counter() - started < 2  # refused before any decoder walks them


def test_a_jpeg_of_thousands_of_scans_is_refused_at_once(client: TestClient) -> None:
    jpeg = jpeg_repeating_its_first_scan(3000)
    assert len(jpeg) < 10 * 1024 * 1024
    response = client.post("/api/predict", content=jpeg, headers=JPEG)
    assert response.status_code == 422
    assert f"at most {MAX_JPEG_SCANS} are read" in response.json()["detail"]


def test_a_progressive_jpeg_with_its_scans_is_read(client: TestClient) -> None:
    jpeg = jpeg_repeating_its_first_scan(0)  # an ordinary progressive JPEG
    response = client.post("/api/predict", content=jpeg, headers=JPEG)
    assert response.status_code == 200  # noise, but a readable image


def test_oversized_exif_is_refused_without_parsing_it(client: TestClient, grey_png: bytes):
    png = with_chunks_before_data(grey_png, chunk(b"eXIf", exif_with_entries(65_533)))
    response = client.post("/api/predict", content=png, headers=PNG)
    assert response.status_code == 422
    assert "EXIF metadata is over 64 kB" in response.json()["detail"]


def test_small_exif_still_turns_a_phone_photo_upright(client: TestClient) -> None:
    # A "1" lying on its side, with EXIF orientation 6: rotate 90 degrees to view it.
    image = Image.new("L", (400, 300), 255)
    image.paste(0, (60, 140, 340, 160))
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = encode(image, "JPEG", exif=exif.tobytes())
    response = client.post("/api/predict", content=photo, headers=JPEG)
    assert response.status_code == 200
    assert response.json()["digit"] == 1


def test_only_canvas_exports_are_decoded_on_the_event_loop(grey_png: bytes) -> None:
    canvas = encode(Image.new("RGBA", (560, 560)))
    assert png_header(canvas).is_canvas_export(640 * 640)
    assert not png_header(grey_png).is_canvas_export(640 * 640)
    assert not png_header(encode(Image.new("RGB", (2000, 2000)))).is_canvas_export(640 * 640)
    assert png_header(b"GIF89a...") is None


@pytest.fixture
def isolation() -> Iterator[IsolatedPreprocessing]:
    limited = IsolatedPreprocessing(slots=1, queue=1, cpu_seconds=1, memory_mb=768)
    yield limited
    limited.close()


def test_the_kernel_stops_work_past_its_cpu_time(isolation: IsolatedPreprocessing) -> None:
    async def scenario() -> tuple[str, float]:
        quick = await isolation.run(burn_cpu, 0.1)
        started = time.perf_counter()
        with pytest.raises(PreprocessError, match="within 1 s of CPU time"):
            await isolation.run(burn_cpu, 30.0)
        return quick, time.perf_counter() - started

    quick, stopped_after = asyncio.run(scenario())
    assert quick == "done"
    assert stopped_after < 10  # stopped at its limit, not after the 30 s it asked for


def test_memory_past_the_limit_is_refused(isolation: IsolatedPreprocessing) -> None:
    async def scenario() -> int:
        with pytest.raises(ImageTooLargeError, match="more memory to decode than allowed"):
            await isolation.run(allocate, 2048)
        return await isolation.run(allocate, 64)  # the slot still works

    assert asyncio.run(scenario()) == 64 * 1024 * 1024


def test_a_full_queue_is_refused_with_503(isolation: IsolatedPreprocessing) -> None:
    async def scenario() -> list[object]:
        return await asyncio.gather(
            *(isolation.run(burn_cpu, 0.3) for _ in range(3)), return_exceptions=True
        )

    results = asyncio.run(scenario())
    # One slot and one place in the queue: the third request is refused, not queued.
    assert results[:2] == ["done", "done"]
    assert isinstance(results[2], ServiceBusyError)


@pytest.mark.slow
def test_a_busy_server_answers_503_with_retry_after(grey_png: bytes) -> None:
    # One decoding slot and no queue: while a large photo is decoded, another is refused.
    large = encode(Image.new("L", (4096, 4096), 255))
    with running_server(DIGIT_CANVAS_DECODE_SLOTS="1", DIGIT_CANVAS_DECODE_QUEUE="0") as server:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(post_image, server.url, large)
            # The photo takes 0.1 to 0.3 s: not a fixed wait, which a fast machine outran.
            # In progress: the photo and the scrape itself.
            wait_for(
                lambda: scrape(server.url)[(IN_PROGRESS, frozenset())] == 2,
                "the photo in progress",
                timeout=10,
                interval=0.005,
            )
            second = pool.submit(post_image, server.url, grey_png)
            statuses = {first.result()[0], second.result()[0]}
            busy = [result for result in (first.result(), second.result()) if result[0] == 503]
        assert statuses == {422, 503}  # the blank photo is empty; the other had to wait
        assert busy[0][1]["Retry-After"] == "1"
        # Free again: the same drawing is read.
        assert post_image(server.url, grey_png)[0] == 200


def post_image(url: str, data: bytes) -> tuple[int, Message]:
    request = urllib.request.Request(f"{url}/api/predict", data=data, headers=PNG)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers
