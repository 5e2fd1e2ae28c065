"""The drawing page end to end: real Chromium, real server, the committed model."""

import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Response,
    expect,
    sync_playwright,
)
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.paths import PROJECT_ROOT
from app.serving.corrections.tables import Correction
from app.training.data import MnistData
from tests.conftest import encode, running_server
from tests.serving.test_metrics import costly_png

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
# Headless Chromium on a machine without network: no background calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# CI machines are shared: give the page time to answer before an expectation fails.
expect.set_options(timeout=15_000)

ONE = [[(0.52, 0.18), (0.5, 0.5), (0.48, 0.82)]]
SEVEN = [[(0.28, 0.22), (0.5, 0.21), (0.72, 0.22), (0.62, 0.45), (0.52, 0.65), (0.45, 0.82)]]


@pytest.fixture(scope="module")
def corrections_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('corrections') / 'corrections.sqlite3'}"


@pytest.fixture(scope="module")
def server_url(corrections_database: str) -> Iterator[str]:
    with running_server(DIGIT_CANVAS_DATABASE_URL=corrections_database) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class PageWatcher:
    """Collects console errors and uncaught exceptions of a page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda message: self._console(message.type, message.text))
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _console(self, kind: str, text: str) -> None:
        if kind == "error":
            self.errors.append(text)


def open_page(context: BrowserContext, url: str) -> tuple[Page, PageWatcher]:
    page = context.new_page()
    watcher = PageWatcher(page)
    page.goto(url)
    expect(page.locator("#digit")).to_have_text("?")
    return page, watcher


@pytest.fixture
def desktop(browser: Browser, server_url: str) -> Iterator[tuple[Page, PageWatcher]]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page, watcher = open_page(context, server_url)
    yield page, watcher
    context.close()
    assert watcher.errors == []


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def pad_box(page: Page) -> dict[str, float]:
    """Where the pad is on screen, scrolled into view first as a person would."""
    page.locator("#pad").scroll_into_view_if_needed()
    box = page.locator("#pad").bounding_box()
    assert box is not None
    return box


def draw_with_mouse(page: Page, strokes: list[list[tuple[float, float]]]) -> None:
    """Each stroke: press, move through the points (fractions of the pad), release."""
    box = pad_box(page)
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=12)
        page.mouse.up()


def chart_percentages(page: Page) -> list[float]:
    values = page.locator("#chart .bar-value").all_inner_texts()
    return [0.0 if text.startswith("<") else float(text.rstrip("%")) for text in values]


def pad_is_blank(page: Page) -> bool:
    return page.evaluate(
        """() => {
            const pad = document.getElementById("pad");
            const pixels = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
            return pixels.every((value) => value === 0);
        }"""
    )


def expect_prediction(page: Page, digit: int) -> None:
    expect(page.locator("#digit")).to_have_text(str(digit))
    expect(page.locator("#chart .bar.top")).to_have_attribute("data-digit", str(digit))
    percentages = chart_percentages(page)
    assert len(percentages) == 10
    assert sum(percentages) == pytest.approx(100, abs=1.5)
    expect(page.locator("#status")).to_have_text(re.compile(rf"Prediction: {digit}, "))


def test_drawing_a_one(desktop: tuple[Page, PageWatcher]) -> None:
    page, _ = desktop
    draw_with_mouse(page, ONE)
    expect_prediction(page, 1)
    expect(page.locator("#confidence")).to_contain_text("sure it is a 1")
    screenshot(page, "drawn-one")


def test_drawing_a_seven_then_undo_and_clear(desktop: tuple[Page, PageWatcher]) -> None:
    page, _ = desktop
    draw_with_mouse(page, SEVEN)
    expect_prediction(page, 7)
    screenshot(page, "drawn-seven")

    # A second stroke, undone with the button: back to the same 7.
    draw_with_mouse(page, [[(0.2, 0.5), (0.8, 0.5)]])
    page.get_by_role("button", name="Undo").click()
    expect_prediction(page, 7)

    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#digit")).to_have_text("?")
    assert (
        page.locator("#chart .bar-value").all_inner_texts() == ["\u2013"] * 10
    )  # en dash: no value
    assert pad_is_blank(page)
    expect(page.get_by_role("button", name="Undo")).to_be_disabled()
    screenshot(page, "cleared")


def test_keyboard_shortcuts_undo_and_clear(desktop: tuple[Page, PageWatcher]) -> None:
    page, _ = desktop
    draw_with_mouse(page, ONE)
    expect_prediction(page, 1)
    draw_with_mouse(page, [[(0.3, 0.3), (0.7, 0.3)]])
    page.keyboard.press("Control+z")
    expect_prediction(page, 1)
    page.keyboard.press("Escape")
    expect(page.locator("#digit")).to_have_text("?")
    assert pad_is_blank(page)


def test_the_model_input_is_shown(desktop: tuple[Page, PageWatcher]) -> None:
    page, _ = desktop
    draw_with_mouse(page, ONE)
    expect_prediction(page, 1)
    # The 28x28 preview: white strokes on black, lit in the middle columns only.
    lit_columns = page.evaluate(
        """() => {
            const data = document.getElementById("model-input").getContext("2d")
                .getImageData(0, 0, 28, 28).data;
            const columns = new Set();
            for (let i = 0; i < 28 * 28; i += 1) {
                if (data[i * 4] > 128) columns.add(i % 28);
            }
            return Array.from(columns).sort((a, b) => a - b);
        }"""
    )
    assert lit_columns
    assert min(lit_columns) >= 8 and max(lit_columns) <= 20


def test_uploading_a_real_mnist_digit(
    desktop: tuple[Page, PageWatcher], mnist: MnistData, tmp_path: Path
) -> None:
    page, _ = desktop
    for index in (1, 2):  # a 2 and a 1 from the MNIST test set
        upload = tmp_path / f"mnist-{index}.png"
        upload.write_bytes(encode(Image.fromarray(mnist.x_test[index]).resize((140, 140))))
        page.locator("#upload").set_input_files(upload)
        expect_prediction(page, int(mnist.y_test[index]))
    assert not pad_is_blank(page)
    screenshot(page, "uploaded-mnist-digit")


def test_dropping_an_image_on_the_pad(desktop: tuple[Page, PageWatcher], mnist: MnistData) -> None:
    page, _ = desktop
    image = list(encode(Image.fromarray(255 - mnist.x_test[0])))  # a 7, dark on light
    page.evaluate(
        """(bytes) => {
            const file = new File([new Uint8Array(bytes)], "seven.png", { type: "image/png" });
            const transfer = new DataTransfer();
            transfer.items.add(file);
            const pad = document.getElementById("pad-area");
            pad.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
        }""",
        image,
    )
    expect_prediction(page, 7)


def test_a_non_image_upload_is_explained(desktop: tuple[Page, PageWatcher], tmp_path: Path):
    page, _ = desktop
    notes = tmp_path / "notes.txt"
    notes.write_text("not a digit")
    page.locator("#upload").set_input_files(notes)
    expect(page.locator("#status")).to_have_text(re.compile("is not an image"))
    expect(page.locator("#digit")).to_have_text("?")


def test_server_unreachable_keeps_the_drawing(browser: Browser, server_url: str) -> None:
    context = browser.new_context()
    page, watcher = open_page(context, server_url)
    page.route("**/api/predict*", lambda route: route.abort("connectionrefused"))
    draw_with_mouse(page, ONE)
    expect(page.locator("#status")).to_have_text(re.compile("Cannot reach the server"))
    assert not pad_is_blank(page)
    screenshot(page, "server-unreachable")

    page.unroute("**/api/predict*")
    draw_with_mouse(page, [[(0.5, 0.5), (0.5, 0.52)]])
    expect(page.locator("#digit")).not_to_have_text("?")
    expect(page.locator("#feedback")).to_be_visible()

    # Cut off again, a stroke more: the answer shown is not about the drawing as it is now.
    page.route("**/api/predict*", lambda route: route.abort("connectionrefused"))
    draw_with_mouse(page, [[(0.3, 0.3), (0.7, 0.3)]])
    expect(page.locator("#status")).to_have_text(re.compile("Cannot reach the server"))
    expect(page.locator("#results")).to_have_class(re.compile(r"\boutdated\b"))
    expect(page.locator("#feedback")).to_be_hidden()
    context.close()
    # The refused requests are the only console errors.
    assert all("ERR_CONNECTION_REFUSED" in error for error in watcher.errors)


def touch(page: Page, session: object, kind: str, x: float, y: float) -> None:
    points = [] if kind == "touchEnd" else [{"x": x, "y": y}]
    session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})


def test_drawing_with_a_finger_on_a_phone(browser: Browser, server_url: str) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page, watcher = open_page(context, server_url)
    session = context.new_cdp_session(page)
    page.locator("#pad").scroll_into_view_if_needed()
    scroll_before = page.evaluate("window.scrollY")
    box = pad_box(page)
    x = box["x"] + 0.5 * box["width"]
    touch(page, session, "touchStart", x, box["y"] + 0.18 * box["height"])
    for step in range(1, 21):
        touch(page, session, "touchMove", x, box["y"] + (0.18 + 0.032 * step) * box["height"])
    touch(page, session, "touchEnd", 0, 0)
    expect_prediction(page, 1)
    assert page.evaluate("window.scrollY") == scroll_before  # the page did not scroll
    screenshot(page, "phone-touch")
    context.close()
    assert watcher.errors == []


@pytest.mark.parametrize("width", [360, 768, 1440])
def test_layout_fits_from_phones_to_desktops(browser: Browser, server_url: str, width: int):
    context = browser.new_context(viewport={"width": width, "height": 800})
    page, watcher = open_page(context, server_url)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    box = pad_box(page)
    assert box["width"] >= min(300, width - 60)
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    screenshot(page, f"layout-{width}")
    context.close()
    assert watcher.errors == []


def test_dark_colour_scheme(browser: Browser, server_url: str) -> None:
    context = browser.new_context(color_scheme="dark")
    page, watcher = open_page(context, server_url)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(246, 247, 251)"  # not the light background
    draw_with_mouse(page, SEVEN)  # light strokes on a transparent canvas
    expect_prediction(page, 7)
    screenshot(page, "dark-seven")
    context.close()
    assert watcher.errors == []


def test_controls_are_labelled_and_keyboard_reachable(desktop: tuple[Page, PageWatcher]):
    page, _ = desktop
    expect(page.get_by_label("Brush size")).to_have_value("36")
    expect(page.locator("#status")).to_have_attribute("role", "status")
    expect(page.locator("#status")).to_have_attribute("aria-live", "polite")
    expect(page.get_by_label("Drawing area", exact=False)).to_be_visible()
    expect(page.locator("#pad")).to_have_attribute("role", "application")
    focused = []
    for _ in range(6):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
        if focused[-1] == "pad":
            # The focus ring stands out from the panel around it: WCAG asks 3:1.
            ring, panel = page.evaluate(
                """() => [getComputedStyle(document.activeElement).outlineColor,
                          getComputedStyle(document.querySelector('.draw-panel')).backgroundColor]"""
            )
            assert contrast(ring, panel) >= 3.0, (ring, panel)
    # Disabled Undo and Clear are skipped until there is something to undo.
    assert focused[:5] == ["mode-digit", "mode-number", "pad", "upload", "brush"]


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""

    def luminance(colour: str) -> float:
        channels = [int(value) / 255 for value in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_brush_size_changes_the_stroke(desktop: tuple[Page, PageWatcher]) -> None:
    page, _ = desktop

    def ink_pixels() -> int:
        return page.evaluate(
            """() => {
                const pad = document.getElementById("pad");
                const data = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
                let count = 0;
                for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count += 1;
                return count;
            }"""
        )

    draw_with_mouse(page, ONE)
    thin_default = ink_pixels()
    page.keyboard.press("Escape")
    page.get_by_label("Brush size").fill("72")
    draw_with_mouse(page, ONE)
    assert ink_pixels() > 1.6 * thin_default
    expect_prediction(page, 1)
    # With the keyboard: the slider says its new value; nothing else repeats it.
    record_announcements(page)
    page.get_by_label("Brush size").press("ArrowRight")
    expect(page.locator("#brush-value")).to_have_text("74")
    assert page.evaluate("window.announcedBy") == []


def test_page_security_headers(server_url: str) -> None:
    with urllib.request.urlopen(server_url) as response:
        headers = response.headers
        page = response.read().decode()
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    # No inline scripts or styles for the policy to block, and nothing from other hosts.
    assert re.search(r"<script(?![^>]*\bsrc=)", page) is None
    assert "style=" not in page
    assert "http://" not in page and "https://" not in page
    asset = re.search(r'src="(/static/app\.js\?v=\w+)"', page).group(1)
    with urllib.request.urlopen(server_url + asset) as response:
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_the_api_docs_work_offline(browser: Browser, server_url: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    watcher = PageWatcher(page)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{server_url}/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/predict/batch")).to_be_visible()
    page.locator(".opblock-summary-path", has_text="/api/predict/pixels").click()
    expect(page.get_by_text("Classify a 28x28 input prepared by the client").first).to_be_visible()
    screenshot(page, "docs-swagger-ui")

    page.goto(f"{server_url}/redoc")
    expect(
        page.get_by_role("heading", name="Classify several images in one request")
    ).to_be_visible()
    screenshot(page, "docs-redoc")
    context.close()

    # ReDoc always asks for its logo from its CDN (and hides it when it fails, as offline);
    # the page's Content-Security-Policy refuses it. Nothing else leaves the server.
    outside = [url for url in requested if not url.startswith((server_url, "data:", "blob:"))]
    assert set(outside) <= {REDOC_LOGO}
    # Anything else refused by the Content-Security-Policy would show as a console error.
    assert [error for error in watcher.errors if REDOC_LOGO not in error] == []


# Digits as a mouse writes them: strokes of points in a digit's box (fractions of it).
DIGIT_STROKES = {
    "0": [[(0.5, 0.05), (0.2, 0.2), (0.12, 0.5), (0.2, 0.82), (0.5, 0.95), (0.8, 0.82),
           (0.88, 0.5), (0.8, 0.2), (0.5, 0.05)]],
    "2": [[(0.15, 0.28), (0.35, 0.08), (0.65, 0.08), (0.82, 0.28), (0.7, 0.5), (0.15, 0.92),
           (0.88, 0.92)]],
    "4": [[(0.55, 0.05), (0.1, 0.62), (0.9, 0.62)], [(0.65, 0.3), (0.65, 0.95)]],
    "6": [[(0.72, 0.06), (0.4, 0.25), (0.2, 0.55), (0.25, 0.85), (0.5, 0.95), (0.75, 0.8),
           (0.7, 0.58), (0.45, 0.5), (0.22, 0.62)]],
}  # fmt: skip


def write_number(page: Page, number: str, spacing: float = 0.2) -> None:
    """Each digit of `number` with the mouse, left to right across the number pad, a digit
    every `spacing` of its width."""
    width = 0.13  # of the pad's width; the pad is 2.8 times as wide as high
    for position, digit in enumerate(number):
        left = 0.08 + position * spacing
        draw_with_mouse(
            page,
            [
                [(left + x * width, 0.15 + y * 0.7) for x, y in stroke]
                for stroke in DIGIT_STROKES[digit]
            ],
        )


def written_in_number_mode(page: Page, number: str, spacing: float = 0.2) -> None:
    """`number` written in number mode (see write_number), and read as it was written."""
    page.get_by_role("button", name="A number").click()
    write_number(page, number, spacing)
    expect(page.locator("#digit")).to_have_text(number)


@pytest.mark.parametrize("number", ["42", "2026"])
def test_writing_a_number_with_the_mouse(desktop: tuple[Page, PageWatcher], number: str):
    page, _ = desktop
    answers: list[Response] = []
    page.on("response", lambda response: "/api/read" in response.url and answers.append(response))
    page.get_by_role("button", name="A number").click()
    expect(page.get_by_role("button", name="A number")).to_have_attribute("aria-pressed", "true")
    write_number(page, number)
    expect(page.locator("#digit")).to_have_text(number)
    expect(page.locator("#status")).to_have_text(f"Read: {number}.")
    digits = page.locator("#number-digits button")
    expect(digits).to_have_count(len(number))
    # Screen readers find the number in the digits' group, and which one the chart is of.
    expect(page.get_by_role("group", name=f"The digits of {number};")).to_be_visible()
    # The last digit written is chosen: its chart and input are shown.
    expect(page.locator("#chart .bar.top")).to_have_attribute("data-digit", number[-1])
    screenshot(page, f"number-{number}")

    # Choosing another digit, by click or by keyboard, shows its chart.
    digits.first.click()
    expect(digits.first).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#chart .bar.top")).to_have_attribute("data-digit", number[0])
    expect(page.locator("#chart")).to_have_attribute(
        "aria-label", f"Probability of each digit, for the 1st digit of {number}"
    )
    page.keyboard.press("ArrowRight")
    expect(digits.nth(1)).to_be_focused()
    expect(page.locator("#chart .bar.top")).to_have_attribute("data-digit", number[1])
    # The boxes of the digits are drawn over the pad, around the digits written: the page
    # sends only the part of the pad its strokes cover, and places the boxes back.
    boxed = page.evaluate(
        """() => {
            const canvas = document.getElementById("boxes");
            const { width, height } = canvas;
            const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
            let count = 0;
            let left = width;
            let right = 0;
            for (let i = 3; i < data.length; i += 4) {
                if (data[i] > 0) {
                    count += 1;
                    left = Math.min(left, ((i - 3) / 4) % width);
                    right = Math.max(right, ((i - 3) / 4) % width);
                }
            }
            const brush = Number(document.getElementById("brush").value);
            return { count, left, right, width, brush };
        }"""
    )
    assert boxed["count"] > 1000
    # Where write_number put the first digit's leftmost point and the last one's rightmost;
    # the pen reaches half its width further, and the boxes stand 8 pixels out.
    first = min(x for stroke in DIGIT_STROKES[number[0]] for x, _ in stroke)
    last = max(x for stroke in DIGIT_STROKES[number[-1]] for x, _ in stroke)
    reach = boxed["brush"] / 2 + 8
    left = (0.08 + first * 0.13) * boxed["width"] - reach
    right = (0.08 + (len(number) - 1) * 0.2 + last * 0.13) * boxed["width"] + reach
    assert boxed["left"] == pytest.approx(left, abs=12)
    assert boxed["right"] == pytest.approx(right, abs=12)
    # The strokes were sent at the size the server reads them, not the pad's: digits about
    # 290 pad pixels high, at most a row's 160 (at the pad's size, 286). Chromium does not
    # give tests the body of a fetch sent from a Blob: the boxes tell the image's scale.
    heights = [digit["box"][3] for digit in answers[-1].json()["digits"]]
    assert 80 <= max(heights) <= 160


def write_number_on_the_digit_pad(page: Page) -> None:
    """Two 1s side by side on the square pad."""
    for position, stroke in enumerate([ONE[0], ONE[0]]):
        draw_with_mouse(page, [[(x - 0.25 + 0.5 * position, y) for x, y in stroke]])


def test_one_digit_mode_says_when_it_sees_several_and_keeps_them_for_a_number(
    desktop: tuple[Page, PageWatcher],
) -> None:
    page, _ = desktop
    write_number_on_the_digit_pad(page)
    expect(page.locator("#status")).to_have_text(re.compile("This looks like 2 digits"))
    # Not "100 % sure it is a 1" of what looks like two digits.
    expect(page.locator("#confidence")).to_have_text(re.compile("^2 digits\\?"))
    page.get_by_role("button", name="A number").click()
    # The strokes came along, fitted to the number pad, and are read as a number.
    expect(page.locator("#digit")).to_have_text("11")
    assert not pad_is_blank(page)
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#digit")).to_have_text("1")
    page.get_by_role("button", name="One digit").click()
    expect(page.locator("#digit")).to_have_text("1")
    expect(page.locator("#chart .bar.top")).to_have_attribute("data-digit", "1")


def ink_height(page: Page) -> int:
    """Rows of the pad with ink on them."""
    return page.evaluate(
        """() => {
            const pad = document.getElementById("pad");
            const { data } = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height);
            let rows = 0;
            for (let row = 0; row < pad.height; row += 1) {
                const line = data.subarray(row * pad.width * 4, (row + 1) * pad.width * 4);
                rows += line.some((value, index) => index % 4 === 3 && value > 0) ? 1 : 0;
            }
            return rows;
        }"""
    )


def test_a_drawing_keeps_its_size_when_the_mode_switches_back(
    desktop: tuple[Page, PageWatcher],
) -> None:
    page, _ = desktop
    draw_with_mouse(page, ONE)
    expect_prediction(page, 1)
    drawn = ink_height(page)
    # The number pad is lower than this 1 is tall: it is shrunk to fit, then restored.
    page.get_by_role("button", name="A number").click()
    expect(page.locator("#digit")).to_have_text("1")
    assert ink_height(page) < 0.95 * drawn
    page.get_by_role("button", name="One digit").click()
    expect(page.locator("#digit")).to_have_text("1")
    assert ink_height(page) == pytest.approx(drawn, abs=3)


def mnist_number(mnist: MnistData, number: str, ink: str = "on paper") -> Image.Image:
    """`number` written with MNIST digits 112 pixels high ("42" is narrower than the number
    pad, which shows it with room on both sides): in dark ink on white paper, as a scan or
    photo is, or in "black" or "white" ink over transparency, as a canvas exports it."""
    written = Image.new("L", (40 + 130 * len(number), 200), 0)
    for position, digit in enumerate(map(int, number)):
        index = int((mnist.y_test == digit).argmax())
        written.paste(Image.fromarray(mnist.x_test[index]).resize((112, 112)),
                      (30 + position * 130, 44))  # fmt: skip
    if ink == "on paper":
        return Image.eval(written, lambda level: 255 - level)
    colour = Image.new("L", written.size, 255 if ink == "white" else 0)
    return Image.merge("LA", (colour, written))


@pytest.mark.parametrize(
    ("scheme", "ink"),
    [("light", "on paper"), ("dark", "on paper"), ("light", "white"), ("dark", "black")],
)
def test_strokes_added_to_an_uploaded_number(
    browser: Browser, server_url: str, mnist: MnistData, scheme: str, ink: str
) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, color_scheme=scheme)
    page, watcher = open_page(context, server_url)
    page.get_by_role("button", name="A number").click()
    page.locator("#upload").set_input_files(
        {
            "name": "forty-two.png",
            "mimeType": "image/png",
            "buffer": encode(mnist_number(mnist, "42", ink)),
        }
    )
    expect(page.locator("#digit")).to_have_text("42")
    # A 7 written after it, on the pad beside the image: the number goes on, whatever the
    # page's own ink.
    draw_with_mouse(page, [[(0.8 + x * 0.12, 0.15 + y * 0.7) for x, y in SEVEN[0]]])
    expect(page.locator("#digit")).to_have_text("427")
    screenshot(page, f"number-upload-and-strokes-{scheme}-{ink.replace(' ', '-')}")
    # On the square pad, the image and the 7 beside it stay together, all of them read.
    page.get_by_role("button", name="One digit").click()
    expect(page.locator("#confidence")).to_have_text(re.compile("^3 digits\\?"))
    page.get_by_role("button", name="A number").click()
    expect(page.locator("#digit")).to_have_text("427")
    context.close()
    assert watcher.errors == []


def test_an_undo_never_shows_the_answer_for_the_stroke_taken_back(
    browser: Browser, server_url: str
) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page, watcher = open_page(context, server_url)
    page.get_by_role("button", name="A number").click()
    write_number(page, "42")
    expect(page.locator("#status")).to_have_text("Read: 42.")
    session = context.new_cdp_session(page)
    session.send("Network.enable")
    session.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 400, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    # A third digit, taken back as soon as it is written: its answer is still on its way.
    draw_with_mouse(page, [[(0.5 + x * 0.13, 0.15 + y * 0.7) for x, y in ONE[0]]])
    page.get_by_role("button", name="Undo").click()
    # Nor their boxes, when the pad is redrawn meanwhile (a phone turned).
    page.set_viewport_size({"width": 700, "height": 900})
    shown = []
    for _ in range(30):
        shown.append(
            page.evaluate(
                """() => {
                    const outdated = document.getElementById("results").classList;
                    const boxes = document.getElementById("boxes");
                    const pixels = boxes.getContext("2d")
                        .getImageData(0, 0, boxes.width, boxes.height).data;
                    return [document.getElementById("digit").textContent,
                            outdated.contains("outdated"), pixels.some((value) => value > 0)];
                }"""
            )
        )
        page.wait_for_timeout(50)
    expect(page.locator("#digit")).to_have_text("42")
    expect(page.locator("#results")).not_to_have_class(re.compile("outdated"))
    # Answers of three digits may be shown only as outdated, dimmed, until the new one.
    assert [text for text, outdated, _ in shown if not outdated and text != "42"] == []
    assert [text for text, outdated, boxed in shown if outdated and boxed] == []
    context.close()
    assert watcher.errors == []


def test_the_status_never_tells_an_older_answer_than_the_one_shown(
    desktop: tuple[Page, PageWatcher],
) -> None:
    page, _ = desktop
    page.get_by_role("button", name="A number").click()
    write_number(page, "4")
    expect(page.locator("#status")).to_have_text("Read: 4.")
    # A 1 written slowly after it: live answers show "41" while the pointer is down.
    box = pad_box(page)
    x = box["x"] + 0.3 * box["width"]
    page.mouse.move(x, box["y"] + 0.15 * box["height"])
    page.mouse.down()
    seen = None
    for step in range(40):
        page.mouse.move(x, box["y"] + (0.15 + 0.018 * step) * box["height"])
        page.wait_for_timeout(40)
        seen = page.evaluate(
            """() => [document.getElementById("digit").textContent,
                      document.getElementById("status").textContent]"""
        )
        if seen[0] == "41":
            break
    assert seen is not None and seen[0] == "41", "no live answer while drawing"
    assert seen[1] != "Read: 4."
    page.mouse.up()
    expect(page.locator("#status")).to_have_text("Read: 41.")


def test_a_long_number_fits_a_phone(browser: Browser, server_url: str, mnist: MnistData) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 800}, is_mobile=True)
    page, watcher = open_page(context, server_url)
    page.get_by_role("button", name="A number").click()
    number = "314159265358"
    page.locator("#upload").set_input_files(
        {"name": "pi.png", "mimeType": "image/png", "buffer": encode(mnist_number(mnist, number))}
    )
    expect(page.locator("#digit")).to_have_text(number)
    # The number wraps within its panel: the page does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shown, panel = (page.locator(selector).bounding_box() for selector in ("#digit", "#results"))
    assert shown["x"] + shown["width"] <= panel["x"] + panel["width"]
    screenshot(page, "number-long-phone")
    context.close()
    assert watcher.errors == []


def test_digit_labels_are_legible_on_a_phone(browser: Browser, server_url: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page, watcher = open_page(context, server_url)
    written_in_number_mode(page, "42")
    label_on_screen = page.evaluate(
        """() => {
            const boxes = document.getElementById("boxes");
            const size = parseFloat(boxes.getContext("2d").font.match(/(\\d+)px/)[1]);
            return size * boxes.getBoundingClientRect().width / boxes.width;
        }"""
    )
    assert label_on_screen >= 14
    screenshot(page, "phone-number-labels")
    context.close()
    assert watcher.errors == []


def test_live_answers_arrive_over_a_slow_network(browser: Browser, server_url: str) -> None:
    context = browser.new_context()
    page, watcher = open_page(context, server_url)
    session = context.new_cdp_session(page)
    session.send("Network.enable")
    session.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 300, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    box = pad_box(page)
    x = box["x"] + 0.5 * box["width"]
    page.mouse.move(x, box["y"] + 0.15 * box["height"])
    page.mouse.down()
    # A slow stroke of three seconds: answers must arrive while it goes on, each round trip
    # taking twice as long as the interval between live requests.
    for step in range(60):
        page.mouse.move(x, box["y"] + (0.15 + 0.012 * step) * box["height"])
        page.wait_for_timeout(50)
    live = page.locator("#digit").inner_text()
    page.mouse.up()
    assert live != "?", "no answer arrived while drawing"
    expect_prediction(page, 1)
    context.close()
    # The first live request, of a stroke just begun, is too faint to read: 422.
    assert [error for error in watcher.errors if "422" not in error] == []


def test_escape_and_undo_in_the_middle_of_a_stroke(desktop: tuple[Page, PageWatcher]) -> None:
    page, _ = desktop
    box = pad_box(page)
    x = box["x"] + 0.5 * box["width"]
    for key in ("Escape", "Control+z"):
        page.mouse.move(x, box["y"] + 0.2 * box["height"])
        page.mouse.down()
        page.mouse.move(x, box["y"] + 0.6 * box["height"], steps=10)
        page.keyboard.press(key)
        # The stroke is gone; the rest of the pointer's way draws nothing.
        page.mouse.move(x, box["y"] + 0.8 * box["height"], steps=5)
        page.mouse.up()
        assert pad_is_blank(page)
        expect(page.locator("#digit")).to_have_text("?")
    # Drawing goes on as before, with answers.
    draw_with_mouse(page, ONE)
    expect_prediction(page, 1)


def test_undo_of_an_upload_lets_the_same_file_be_chosen_again(
    desktop: tuple[Page, PageWatcher], mnist: MnistData, tmp_path: Path
) -> None:
    page, _ = desktop
    upload = tmp_path / "two.png"
    upload.write_bytes(encode(Image.fromarray(mnist.x_test[1]).resize((140, 140))))
    page.locator("#upload").set_input_files(upload)
    expect_prediction(page, 2)
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#digit")).to_have_text("?")
    assert pad_is_blank(page)
    page.locator("#upload").set_input_files(upload)
    expect_prediction(page, 2)


def test_the_servers_own_error_is_shown(browser: Browser, server_url: str) -> None:
    context = browser.new_context()
    page, watcher = open_page(context, server_url)
    page.route(
        "**/api/predict*",
        lambda route: route.fulfill(
            status=413, content_type="application/json", body='{"detail": "Content Too Large"}'
        ),
    )
    draw_with_mouse(page, ONE)
    expect(page.locator("#status")).to_have_text(
        "The server could not read it (413): Content Too Large."
    )
    context.close()
    assert [error for error in watcher.errors if "413" not in error] == []


def test_an_image_too_costly_to_decode_is_not_taken_for_an_empty_drawing(
    desktop: tuple[Page, PageWatcher], mnist: MnistData
) -> None:
    page, watcher = desktop
    # A 7 the browser shows, with thousands of empty chunks the server refuses it for (422,
    # as for an empty drawing, which asks for more strokes instead).
    seven = encode(Image.fromarray(mnist.x_test[0]).resize((140, 140)))
    page.locator("#upload").set_input_files(
        {"name": "seven.png", "mimeType": "image/png", "buffer": costly_png(seven)}
    )
    expect(page.locator("#status")).to_have_text(
        re.compile(r"^The server could not read it \(422\): the image costs too much to decode")
    )
    watcher.errors.clear()  # the browser's own console line for the 422


def test_an_upload_the_server_refuses_replaces_the_answer_before_it(
    browser: Browser, server_url: str, mnist: MnistData
) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page, watcher = open_page(context, server_url)
    page.get_by_role("button", name="A number").click()
    page.locator("#upload").set_input_files(
        {"name": "42.png", "mimeType": "image/png", "buffer": encode(mnist_number(mnist, "42"))}
    )
    expect(page.locator("#digit")).to_have_text("42")
    # A panorama past the server's 8,192 pixels a side, which the browser shows.
    panorama = encode(Image.new("L", (9000, 1200), 235))
    page.locator("#upload").set_input_files(
        {"name": "panorama.png", "mimeType": "image/png", "buffer": panorama}
    )
    expect(page.locator("#status")).to_have_text(re.compile(r"could not read it \(413\)"))
    # Nothing is left of "42": no number, no boxes over the panorama, nothing to correct.
    expect(page.locator("#digit")).to_have_text("?")
    expect(page.locator("#number-digits")).to_be_hidden()
    expect(page.locator("#feedback")).to_be_hidden()
    assert painted_pixels(page, "#boxes") == 0
    context.close()
    assert [error for error in watcher.errors if "413" not in error] == []


def test_a_number_uploaded_that_the_browser_cannot_show(
    browser: Browser, server_url: str, mnist: MnistData
) -> None:
    # A browser without a decoder for the format (older Safari and WebP): the server reads
    # the number, but its digits cannot be cut out of the pad to be sent as corrections.
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.add_init_script(
        "window.createImageBitmap = () => Promise.reject(new DOMException('no decoder'));"
    )
    page, watcher = open_page(context, server_url)
    page.get_by_role("button", name="A number").click()
    page.locator("#upload").set_input_files(
        {"name": "42.png", "mimeType": "image/png", "buffer": encode(mnist_number(mnist, "42"))}
    )
    expect(page.locator("#digit")).to_have_text("42")
    expect(page.locator("#feedback")).to_be_hidden()
    page.locator("#number-digits button").first.click()
    expect(page.locator("#chart .bar.top")).to_have_attribute("data-digit", "4")
    assert painted_pixels(page, "#boxes") == 0
    context.close()
    assert watcher.errors == []


def painted_pixels(page: Page, selector: str) -> int:
    """How many pixels of the canvas are painted (not fully transparent)."""
    return page.evaluate(
        """(selector) => {
            const canvas = document.querySelector(selector);
            const { width, height } = canvas;
            const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
            let count = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count += 1;
            return count;
        }""",
        selector,
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_inside_the_network_follows_the_drawing(browser: Browser, server_url: str, scheme):
    context = browser.new_context(viewport={"width": 1100, "height": 1400}, color_scheme=scheme)
    page, watcher = open_page(context, server_url)
    inside = page.locator("#inside")
    expect(inside).not_to_have_attribute("open", "")  # folded by default
    page.get_by_text("Inside the network").click()
    expect(page.locator("#inside-status")).to_have_text("Draw to look inside the network.")

    draw_with_mouse(page, SEVEN)
    expect_prediction(page, 7)
    served = page.locator('.explained[data-model="default"]')
    expect(served.locator(".explained-title")).to_have_text(re.compile(r"The served model: 7, "))
    expect(served.locator(".hidden-text")).to_have_text(re.compile(r"^\d+ of 512 units active"))
    expect(served.locator(".logit.top .logit-label")).to_have_text("7")
    expect(served.locator(".units li")).to_have_count(8)
    expect(served.locator(".evidence-text")).to_have_text(re.compile(r"^The logit of 7 is "))
    assert painted_pixels(page, '.explained[data-model="default"] .evidence-map') > 40
    answer_map = served.locator(".evidence-map").get_attribute("aria-label")

    # Why not the runner-up: its own logit, its own map.
    runner_up = served.locator(".evidence-runner-up")
    runner_up_digit = re.search(r"\d", runner_up.inner_text()).group()
    runner_up.click()
    expect(runner_up).to_have_attribute("aria-pressed", "true")
    expect(served.locator(".evidence-text")).to_have_text(
        re.compile(rf"^The logit of {runner_up_digit} is ")
    )
    assert served.locator(".evidence-map").get_attribute("aria-label") != answer_map

    # The book's recipe beside it, on the same drawing.
    page.get_by_label("Show the book's recipe", exact=False).check()
    book = page.locator('.explained[data-model="seed"]')
    expect(book.locator(".explained-title")).to_have_text(re.compile(r"The book's recipe: \d, "))
    expect(book.locator(".logit")).to_have_count(10)

    # Drawing on changes what is shown inside: a stroke more, new numbers.
    before = served.locator(".hidden-text").inner_text()
    draw_with_mouse(page, [[(0.35, 0.5), (0.65, 0.5)]])
    expect(served.locator(".hidden-text")).not_to_have_text(before)
    screenshot(page, f"inside-the-network-{scheme}")
    context.close()
    assert watcher.errors == []


def test_inside_the_network_names_the_digit_of_a_number(
    desktop: tuple[Page, PageWatcher],
) -> None:
    page, _ = desktop
    page.get_by_text("Inside the network").click()
    written_in_number_mode(page, "42")
    title = page.locator('.explained[data-model="default"] .explained-title')
    expect(title).to_have_text(re.compile(r"^The served model, on the 2nd digit of 42: 2, "))
    page.locator("#number-digits button").first.click()
    expect(title).to_have_text(re.compile(r"^The served model, on the 1st digit of 42: 4, "))
    # A number of one digit is just the drawing.
    page.get_by_role("button", name="Clear").click()
    draw_with_mouse(page, SEVEN)
    expect(page.locator("#digit")).to_have_text("7")
    expect(title).to_have_text(re.compile(r"^The served model: 7, "))


def test_inside_the_network_on_a_phone(browser: Browser, server_url: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page, watcher = open_page(context, server_url)
    page.get_by_text("Inside the network").click()
    page.locator("#pad").scroll_into_view_if_needed()
    draw_with_mouse(page, SEVEN)
    expect(page.locator('.explained[data-model="default"] .units li')).to_have_count(8)
    page.locator("#inside").scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "inside-the-network-phone")
    context.close()
    assert watcher.errors == []


def record_announcements(page: Page) -> None:
    """From now on, `window.announcedBy` lists the ids of the live regions whose text changes
    (what a screen reader reads out without being asked), once each."""
    page.evaluate(
        """() => {
            window.announcedBy = [];
            // Explicit live regions, and <output>, one by default (its role is status).
            const regions = Array.from(
                document.querySelectorAll('[aria-live], [role="status"], [role="alert"], output')
            ).filter((region) => region.getAttribute("aria-live") !== "off");
            for (const region of regions) {
                new MutationObserver(() => {
                    if (!window.announcedBy.includes(region.id)) window.announcedBy.push(region.id);
                }).observe(region, { childList: true, characterData: true, subtree: true });
            }
        }"""
    )


def test_correcting_the_model(desktop: tuple[Page, PageWatcher], corrections_database: str):
    page, _ = desktop
    count = page.locator("#feedback-count")
    expect(count).to_have_text(re.compile(r"^[\d,]+ corrections? collected so far\.$"))
    before = int(re.match(r"[\d,]+", count.inner_text()).group().replace(",", ""))
    expect(page.locator("#feedback")).to_be_hidden()  # nothing to correct yet
    draw_with_mouse(page, SEVEN)
    expect_prediction(page, 7)
    record_announcements(page)
    page.get_by_role("button", name="Wrong: it was a 4").click()
    expect(page.locator("#status")).to_have_text(re.compile(r"Thank you: kept as a 4"))
    expect(count).to_have_text(
        f"{before + 1:,} correction{'s' if before else ''} collected so far."
    )
    # A screen reader hears the thanks once: the count is no live region of its own.
    assert page.evaluate("window.announcedBy") == ["status"]
    with Session(create_engine(corrections_database)) as session:
        stored = session.scalars(select(Correction).order_by(Correction.id.desc())).first()
    assert (stored.label, stored.model_digit, stored.claimed_prediction) == (4, 7, 7)
    assert stored.pointer_type == "mouse"
    assert len(stored.model_input) == 784
    screenshot(page, "corrected")


def test_correcting_one_digit_of_a_number(
    desktop: tuple[Page, PageWatcher], corrections_database: str
) -> None:
    page, _ = desktop
    # Close together: the margin cut around a digit reaches into its neighbours.
    written_in_number_mode(page, "2026", spacing=0.16)
    page.locator("#number-digits button").nth(1).click()
    shown = page.evaluate(
        """() => Array.from(document.getElementById("model-input").getContext("2d")
                .getImageData(0, 0, 28, 28).data.filter((_, index) => index % 4 === 0))"""
    )
    page.get_by_role("button", name="Wrong: it was an 8").click()
    expect(page.locator("#status")).to_have_text(
        re.compile(r"Thank you: the 2nd digit of 2026 kept as an 8")
    )
    with Session(create_engine(corrections_database)) as session:
        stored = session.scalars(select(Correction).order_by(Correction.id.desc())).first()
    # The chosen digit alone was sent, cut out of the pad: the server read the 0 in it, and
    # stored what the page showed for it (to a pixel's shift, the cut being read alone),
    # without ink of the digits beside it.
    assert (stored.label, stored.model_digit, stored.claimed_prediction) == (8, 0, 0)
    assert ink_extent(stored.model_input) == pytest.approx(ink_extent(shown), abs=1)


def ink_extent(model_input: bytes | list[int]) -> tuple[int, int]:
    """Columns and rows of a 28x28 input with ink (above 30 of 255) in them."""
    inked = np.asarray(list(model_input)).reshape(28, 28) > 30
    return int(inked.any(axis=0).sum()), int(inked.any(axis=1).sum())


def test_focus_stays_on_the_page_when_what_has_it_is_rebuilt_or_hidden(
    desktop: tuple[Page, PageWatcher],
) -> None:
    page, _ = desktop
    written_in_number_mode(page, "2026")
    page.locator("#number-digits button").first.click()
    page.keyboard.press("Control+z")
    expect(page.locator("#digit")).to_have_text("202")
    # The digit buttons were made anew: the chosen one has the focus.
    expect(page.locator("#number-digits button").first).to_be_focused()
    page.get_by_role("button", name="Wrong: it was a 3").focus()
    page.keyboard.press("Control+z")
    expect(page.locator("#digit")).to_have_text("20")
    # The corrections were hidden meanwhile: the pad has the focus, not the page's body.
    expect(page.locator("#pad")).to_be_focused()


def test_new_ink_shows_the_digit_being_written(desktop: tuple[Page, PageWatcher]) -> None:
    page, _ = desktop
    written_in_number_mode(page, "202")
    digits = page.locator("#number-digits button")
    digits.first.click()
    expect(digits.first).to_have_attribute("aria-pressed", "true")
    # A fourth digit written: the one chosen before no longer is, so that a correction is
    # not about a digit written earlier.
    draw_with_mouse(
        page,
        [[(0.68 + x * 0.13, 0.15 + y * 0.7) for x, y in stroke] for stroke in DIGIT_STROKES["6"]],
    )
    expect(page.locator("#digit")).to_have_text("2026")
    expect(digits.nth(3)).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#chart .bar.top")).to_have_attribute("data-digit", "6")


def test_the_page_says_when_the_model_hesitates(browser: Browser, server_url: str) -> None:
    context = browser.new_context()
    page, watcher = open_page(context, server_url)
    # An answer split between two digits, as a long-flagged 1 can get: 7 at 55 %, 1 at 40 %.
    probabilities = [0.01, 0.4] + [0.01] * 5 + [0.55, 0.0, 0.0]
    hesitant = {"digit": 7, "confidence": 0.55, "probabilities": probabilities}
    page.route("**/api/predict*", lambda route: route.fulfill(json=hesitant))
    draw_with_mouse(page, ONE)
    expect(page.locator("#confidence")).to_have_text("A 7 or a 1? 55.0% against 40.0%")
    expect(page.locator("#status")).to_have_text("Prediction: 7, 55.0%, or perhaps a 1.")
    context.close()
    assert watcher.errors == []
