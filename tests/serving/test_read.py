"""Reading whole numbers: MNIST test digits drawn side by side on a wide canvas, as the
page's number pad or a program sends them, read digit by digit."""

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from app.serving import segmentation
from app.serving.model_file import load_classifier
from app.serving.preprocessing import Limits
from app.serving.segmentation import find_digits, read_digits
from app.training.data import MnistData
from app.training.drawings import DrawingStyle, render_drawing
from app.training.number_evaluation import number_jobs
from app.training.numbers import random_number_style, write_number
from tests.conftest import encode

PNG = {"Content-Type": "image/png"}


def number_drawing(
    mnist: MnistData,
    indices: list[int],
    height: int = 150,
    gap: float = 0.4,
    drops: list[int] | None = None,
) -> tuple[bytes, str, list[tuple[int, int]]]:
    """The test digits at `indices` drawn left to right on a 1120x400 transparent canvas,
    `gap` of a digit's height apart, each `drops` pixels lower than the first (none); the
    PNG, the number, and each digit's columns."""
    canvas = Image.new("RGBA", (1120, 400), (0, 0, 0, 0))
    x, columns = 40, []
    for index, drop in zip(indices, drops or [0] * len(indices), strict=True):
        style = DrawingStyle(canvas_size=(height, 400), digit_height=0.9 * height,
                             background="transparent")  # fmt: skip
        digit = Image.open(io.BytesIO(render_drawing(mnist.x_test[index], style)))
        left, _, right, _ = digit.getbbox()
        canvas.alpha_composite(digit, (x - left, drop))
        columns.append((x, x + right - left))
        x += right - left + round(gap * height)
    number = "".join(str(mnist.y_test[index]) for index in indices)
    return encode(canvas), number, columns


@pytest.mark.parametrize("indices", [[1, 2], [3, 4, 5, 6], [11, 12, 13, 14, 15, 16]])
def test_numbers_are_read_digit_by_digit(client: TestClient, mnist: MnistData, indices):
    png, number, columns = number_drawing(mnist, indices)
    response = client.post("/api/read?include_input=true", content=png, headers=PNG)
    assert response.status_code == 200
    body = response.json()
    assert body["number"] == number
    for digit, (left, right) in zip(body["digits"], columns, strict=True):
        x, _, width, height = digit["box"]
        # The box is in the uploaded image's pixels, around that digit's strokes.
        assert abs(x - left) <= 4 and abs(x + width - right) <= 4
        assert 100 < height < 150
        assert len(digit["input"]) == 28
        assert sum(digit["probabilities"]) == pytest.approx(1.0, abs=1e-4)


def test_a_number_written_large_is_read_reduced_as_the_model_would_see_it_full_size(
    mnist: MnistData, committed_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Digits 216 pixels high: the row is read at half size, where they are still 108 high.
    png, number, columns = number_drawing(mnist, [3, 4, 5, 6], height=240)
    read = read_digits(png, Limits())
    assert len(read) == len(number)
    for digit, (left, right) in zip(read, columns, strict=True):
        x, _, width, height = digit.box
        assert abs(x - left) <= 4 and abs(x + width - right) <= 4
        assert 150 < height < 240
    monkeypatch.setattr(segmentation, "NUMBER_WORKING_HEIGHT", 10_000)
    full_size = np.stack([digit.model_input for digit in read_digits(png, Limits())])
    inputs = np.stack([digit.model_input for digit in read])
    # The same number, from inputs a few levels of grey apart.
    classifier = load_classifier(committed_model_path)
    answers = [classifier.predict(each).argmax(axis=1) for each in (inputs, full_size)]
    assert "".join(map(str, answers[0])) == "".join(map(str, answers[1])) == number
    assert np.abs(inputs - full_size).mean() < 0.02
    assert not np.array_equal(inputs, full_size)  # they were read at half size


def test_digits_far_shorter_than_their_row_are_found_full_size(mnist: MnistData) -> None:
    # A baseline that wanders 90 pixels makes a row twice as high as its digits: reduced to
    # that row's working height they would be too small, so their inputs are those of the
    # same digits written on one line, to the bit.
    indices, drops = [3, 4, 5, 6], [0, 90, 30, 60]
    wandering, _, _ = number_drawing(mnist, indices, height=100, drops=drops)
    level, _, _ = number_drawing(mnist, indices, height=100)
    read_wandering, read_level = read_digits(wandering, Limits()), read_digits(level, Limits())
    assert [digit.box[1] - drop for digit, drop in zip(read_wandering, drops, strict=True)] == [
        digit.box[1] for digit in read_level
    ]
    for one, other in zip(read_wandering, read_level, strict=True):
        np.testing.assert_array_equal(one.model_input, other.model_input)


def test_a_single_digit_says_when_the_image_holds_several(client: TestClient, mnist):
    png, _, _ = number_drawing(mnist, [1, 2, 3])
    several = client.post("/api/predict", content=png, headers=PNG).json()
    assert several["digits_found"] == 3
    one, _, _ = number_drawing(mnist, [1])
    assert "digits_found" not in client.post("/api/predict", content=one, headers=PNG).json()


def strokes(size: tuple[int, int], lines: list[tuple[int, int, int, int]]) -> np.ndarray:
    """8-bit ink (white on black) of straight strokes 12 pixels wide."""
    image = Image.new("L", size, 0)
    for line in lines:
        ImageDraw.Draw(image).line(line, fill=255, width=12)
    return np.asarray(image)


def polyline(points: list[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """The straight strokes from each point to the next."""
    return [(*start, *end) for start, end in itertools.pairwise(points)]


def digit_columns(ink: np.ndarray) -> list[tuple[int, int]]:
    return [(digit.left, digit.left + digit.width) for digit in find_digits(ink)[1]]


def test_parts_of_one_digit_drawn_apart_stay_one_digit() -> None:
    # A "5" whose top bar was lifted off, a "4" in two strokes, a "1" with a dot above.
    five = [(60, 40, 120, 40), (60, 50, 60, 110), (60, 110, 120, 150), (120, 150, 60, 200)]
    four = [(200, 40, 170, 140), (170, 140, 250, 140), (230, 60, 230, 210)]
    one = [(320, 80, 320, 210), (320, 40, 320, 44)]
    ink = strokes((400, 240), five + four + one)
    assert digit_columns(ink) == [
        pytest.approx((54, 126), abs=2),
        pytest.approx((164, 251), abs=2),
        pytest.approx((314, 326), abs=2),
    ]


def touching_zeros(pen: ImageDraw.ImageDraw, left: int) -> None:
    """A "00" from `left`, 160 pixels high, the two joined by a thin stroke: one piece."""
    pen.ellipse((left, 40, left + 100, 200), outline=255, width=12)
    pen.ellipse((left + 120, 40, left + 220, 200), outline=255, width=12)
    pen.line((left + 95, 120, left + 125, 120), fill=255, width=3)


def test_two_digits_that_touch_lightly_are_split() -> None:
    # One piece, much wider than tall.
    image = Image.new("L", (260, 240), 0)
    touching_zeros(ImageDraw.Draw(image), 10)
    first, second = find_digits(np.asarray(image))[1]
    # Cut within the thin joint (columns 110 to 130): each "0" whole.
    assert first.left == 10 and second.left + second.width == 231
    assert 109 <= first.left + first.width <= second.left <= 131


def test_digits_that_touch_are_read_as_two_when_that_is_likelier(
    client: TestClient, mnist: MnistData
) -> None:
    # A 2 whose tail runs into the 1 after it: one piece, too wide for one digit, not wide
    # enough to be sure; read both ways, the two digits are the likelier reading.
    png, number, columns = number_drawing(mnist, [1, 2], gap=-0.02)
    (found,) = read_digits(png, Limits())
    assert found.split is not None
    body = client.post("/api/read", content=png, headers=PNG).json()
    assert body["number"] == number == "21"
    (two, one) = (digit["box"] for digit in body["digits"])
    assert two[0] == pytest.approx(columns[0][0], abs=4)
    assert one[0] + one[2] == pytest.approx(columns[1][1], abs=4)
    # A wide 4 of the test digits, in a number of the evaluation's: read both ways too, it
    # stays one digit.
    job = number_jobs(mnist.x_test, mnist.y_test, 12, "apart")[11]
    style = random_number_style(np.random.default_rng(job.seed), len(job.labels), job.spacing)
    png = write_number(job.digits, style).image
    assert read_digits(png, Limits())[0].split is not None
    assert client.post("/api/read", content=png, headers=PNG).json()["number"] == "42"


@pytest.mark.parametrize(
    ("seed", "indices"),
    [
        # A 9 whose loop and stem are two pieces side by side, sharing almost no columns,
        # each over half the 9's height: read apart, "615".
        (191348585, [57072, 43937]),
        # A 9 whose stem's end broke off a stroke or two to its right: too far to join, too
        # wide with the 9 for a digit that came apart, the end was a "1" of its own, "915".
        (1139466370, [46701, 38689]),
    ],
)
def test_a_digit_whose_stroke_came_apart_is_read_as_one_when_that_is_likelier(
    client: TestClient, mnist: MnistData, seed: int, indices: list[int]
) -> None:
    # Training digits in "95" as the evaluation writes numbers; read both ways, joined and
    # apart, the 9 is the likelier reading.
    style = random_number_style(np.random.default_rng(seed), 2, "apart")
    png = write_number(mnist.x_train[indices], style).image
    first, second, five = read_digits(png, Limits())
    assert first.with_next is not None
    assert second.with_next is None and five.with_next is None
    body = client.post("/api/read", content=png, headers=PNG).json()
    assert body["number"] == "95"
    assert body["digits"][0]["box"] == list(first.with_next.box)


def test_a_one_beside_a_short_zero_stays_two_digits(client: TestClient) -> None:
    # A "1" beside a "0" half its height, as near as a 9's broken stem: read both ways
    # too, it stays "10".
    image = Image.new("L", (400, 260), 0)
    pen = ImageDraw.Draw(image)
    pen.line((150, 40, 150, 220), fill=255, width=12)
    pen.ellipse((175, 120, 245, 220), outline=255, width=12)
    one, zero = read_digits(encode(image), Limits())
    assert one.with_next is not None and zero.with_next is None
    assert client.post("/api/read", content=encode(image), headers=PNG).json()["number"] == "10"


def test_digits_leaning_into_each_others_columns_are_read_as_two_when_that_is_likelier(
    client: TestClient,
) -> None:
    # "21" with the 1 slanted over the end of the 2's base, not touching it: two pieces
    # sharing columns, merged as one digit, were read "2".
    image = Image.new("L", (400, 260), 0)
    pen = ImageDraw.Draw(image)
    pen.arc((40, 40, 160, 140), start=180, end=30, fill=255, width=12)
    pen.line((152, 112, 50, 215), fill=255, width=12)
    pen.line((50, 215, 200, 215), fill=255, width=12)
    pen.line((250, 40, 185, 190), fill=255, width=12)
    png = encode(image)
    (found,) = read_digits(png, Limits())
    assert found.split is not None
    body = client.post("/api/read", content=png, headers=PNG).json()
    assert body["number"] == "21"
    two, one = (digit["box"] for digit in body["digits"])
    assert two[0] == pytest.approx(40, abs=4) and one[0] + one[2] == pytest.approx(256, abs=4)
    # A wide "0" in two strokes, one over the other: its two strokes span each other's
    # middle, so it is one digit only.
    image = Image.new("L", (400, 260), 0)
    pen = ImageDraw.Draw(image)
    pen.arc((60, 40, 340, 220), start=150, end=330, fill=255, width=12)
    pen.arc((70, 50, 350, 230), start=350, end=130, fill=255, width=12)
    png = encode(image)
    (found,) = read_digits(png, Limits())
    assert found.split is None
    assert client.post("/api/read", content=png, headers=PNG).json()["number"] == "0"


def test_a_flat_zero_between_taller_digits_is_one_digit() -> None:
    # "101" with the 0 written flat and open at the top: much wider than its own height, and
    # crossed by a single stroke below the opening, but not wider than the number's digits
    # are tall.
    image = Image.new("L", (420, 240), 0)
    pen = ImageDraw.Draw(image)
    pen.line((60, 40, 60, 200), fill=255, width=12)
    pen.arc((120, 100, 280, 200), start=300, end=240, fill=255, width=12)
    pen.line((340, 40, 340, 200), fill=255, width=12)
    assert [(digit.left, digit.width) for digit in find_digits(np.asarray(image))[1]] == [
        pytest.approx((55, 12), abs=2),
        pytest.approx((120, 161), abs=2),
        pytest.approx((335, 12), abs=2),
    ]


def test_touching_digits_beside_others_are_split() -> None:
    # The same "00" after a "1" as tall as they are.
    image = Image.new("L", (330, 240), 0)
    pen = ImageDraw.Draw(image)
    pen.line((20, 40, 20, 200), fill=255, width=12)
    touching_zeros(pen, 80)
    assert len(find_digits(np.asarray(image))[1]) == 3


def test_specks_are_not_digits() -> None:
    ink = strokes((300, 240), [(150, 40, 150, 200), (40, 220, 42, 222)])
    assert len(find_digits(ink)[1]) == 1


def test_a_short_digit_whose_bar_was_lifted_off_stays_one_digit() -> None:
    # "151" with the 5 written at half the height of the 1s: its body and its bar, each
    # short, side by side with few columns in common, are one digit.
    five = [(150, 128, 150, 150), (150, 150, 180, 160), (180, 160, 150, 190)]
    bar = [(178, 118, 220, 118)]
    ink = strokes((320, 240), [(40, 40, 40, 200), *five, *bar, (280, 40, 280, 200)])
    assert digit_columns(ink) == [
        pytest.approx((34, 46), abs=2),
        pytest.approx((144, 221), abs=3),
        pytest.approx((274, 286), abs=2),
    ]


def test_digits_written_small_beside_a_tall_one_are_digits() -> None:
    # "123", the 1 four times as high as the 2 and the 3: each of those is a quarter of the
    # tallest piece high, but many strokes long, not a speck (the number read "1").
    two = [(300, 300), (320, 286), (345, 286), (360, 302), (350, 318), (300, 350), (362, 350)]
    three = [(420, 290), (450, 284), (470, 296), (445, 318), (472, 332), (460, 354), (420, 350)]
    ink = strokes((520, 400), [(80, 20, 80, 380), *polyline(two), *polyline(three)])
    assert digit_columns(ink) == [
        pytest.approx((74, 86), abs=2),
        pytest.approx((297, 366), abs=2),
        pytest.approx((419, 478), abs=2),
    ]


def test_dots_left_by_a_broken_stroke_are_not_a_digit() -> None:
    # "11" with a column of two dots between them, as high as the digits: little ink.
    dots = [(150, 60, 150, 64), (150, 150, 150, 154)]
    ink = strokes((300, 240), [(40, 40, 40, 200), *dots, (260, 40, 260, 200)])
    assert digit_columns(ink) == [pytest.approx((34, 46), abs=2), pytest.approx((254, 266), abs=2)]


def test_a_number_written_on_two_lines_is_read_line_by_line(
    client: TestClient, mnist: MnistData
) -> None:
    top, top_number, _ = number_drawing(mnist, [3, 4, 5])
    bottom, bottom_number, _ = number_drawing(mnist, [6, 7])
    # Each line's digits are drawn across rows 132-268 of its canvas: one line is moved up
    # by 110 rows, the other down by 100.
    canvas = Image.new("RGBA", (1120, 400), (0, 0, 0, 0))
    canvas.alpha_composite(Image.open(io.BytesIO(top)), (0, 0), (0, 110))
    canvas.alpha_composite(Image.open(io.BytesIO(bottom)).crop((0, 0, 1120, 300)), (0, 100))
    body = client.post("/api/read", content=encode(canvas), headers=PNG).json()
    assert body["number"] == top_number + bottom_number
    rows = [digit["box"][1] for digit in body["digits"]]
    assert all(row < 200 for row in rows[:3]) and all(row >= 200 for row in rows[3:])


def test_an_eight_drawn_as_two_loops_is_one_digit() -> None:
    # Two loops, one above the other, beside a "1": stacked, but not digits of two lines.
    image = Image.new("L", (300, 260), 0)
    pen = ImageDraw.Draw(image)
    pen.line((40, 30, 40, 230), fill=255, width=12)
    pen.ellipse((130, 30, 230, 125), outline=255, width=12)
    pen.ellipse((125, 135, 235, 230), outline=255, width=12)
    assert len(find_digits(np.asarray(image))[1]) == 2


def dust(
    image: np.ndarray, count: int, side: int, clear: int = 0, ink: int | tuple = 255
) -> np.ndarray:
    """`image` with `count` square specks of `ink` `side` pixels wide, anywhere at least
    `clear` pixels from what it shows."""
    dusty = image.copy()
    rng = np.random.default_rng(0)
    while count:
        row, column = (int(rng.integers(0, extent - side)) for extent in image.shape[:2])
        around = image[max(0, row - clear) : row + side + clear,
                       max(0, column - clear) : column + side + clear]  # fmt: skip
        if clear == 0 or not around.any():
            dusty[row : row + side, column : column + side] = ink
            count -= 1
    return dusty


def digit_boxes(ink: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(digit.left, digit.top, digit.width, digit.height) for digit in find_digits(ink)[1]]


@pytest.mark.parametrize("count", [10, 100])
def test_dust_is_no_part_of_the_digits(count: int) -> None:
    # "11" with dust all around it, above and below the 1s too, farther from them than a
    # tenth of their height: their boxes stay their own. Past 48 pieces, the specks are
    # dropped before the pieces are joined.
    ink = strokes((300, 280), [(40, 60, 40, 220), (260, 60, 260, 220)])
    dusty = dust(ink, count, side=3, clear=20)
    dusty[20:23, 39:42] = dusty[250:253, 259:262] = 255  # right above and below a 1
    assert digit_boxes(dusty) == digit_boxes(ink)


def test_a_number_in_dust_is_read(client: TestClient, mnist: MnistData) -> None:
    png, number, _ = number_drawing(mnist, [3, 4, 5, 6])
    dusty = dust(np.asarray(Image.open(io.BytesIO(png))), 60, side=3, ink=(0, 0, 0, 255))
    body = client.post("/api/read", content=encode(Image.fromarray(dusty)), headers=PNG).json()
    assert body["number"] == number


def test_more_specks_than_16_bit_labels_hold_are_read_as_one_scribble() -> None:
    # 67,600 specks: OpenCV refuses to number them in 16 bits, and they are still labelled.
    ink = np.zeros((520, 520), np.uint8)
    ink[::2, ::2] = 255
    labelled, digits = find_digits(ink)
    assert labelled.max() == 260 * 260
    assert [(digit.width, digit.height, digit.area) for digit in digits] == [(519, 519, 67600)]


def test_a_wide_scribble_of_many_dots_is_read_as_one_digit(client: TestClient) -> None:
    # 15,600 dots, wider than high: one piece of more strokes than a digit has, read as a
    # single digit, never tried as two groups of strokes (a pass over it for each dot).
    ink = np.zeros((200, 700), np.uint8)
    ink[::3, ::3] = 255
    png = encode(Image.fromarray(ink))
    (found,) = read_digits(png, Limits())
    assert found.split is None and found.with_next is None
    body = client.post("/api/read", content=png, headers=PNG).json()
    assert len(body["digits"]) == 1


def test_boxes_map_back_to_a_large_photo(mnist: MnistData) -> None:
    # A 2400x800 photo is read at a reduced size; its boxes are in the photo's own pixels.
    png, number, columns = number_drawing(mnist, [1, 2])
    photo = Image.open(io.BytesIO(png)).resize((2240, 800))
    read = read_digits(encode(photo), Limits())
    assert len(read) == len(number)
    for digit, (left, _) in zip(read, columns, strict=True):
        assert abs(digit.box[0] - 2 * left) <= 8
