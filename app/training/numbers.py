"""Whole numbers written as people write them, from MNIST digits, to test reading numbers.

Each digit is drawn as app.training.drawings draws a single one (scanned strokes or a pen,
slanted), then set beside the previous one: digit heights of 40 to 120 pixels, each one a
little larger or smaller and higher or lower than the last, gaps of 0.15 to 0.6 of a
digit's width (almost none for the "tight" set, a small overlap for the "overlapping" one),
on canvases up to 1200x400, white or transparent as canvases export them.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from app.training.drawings import Background, DrawingStyle, brush_strokes, canvas_export

Spacing = Literal["apart", "tight", "overlapping"]

MAX_CANVAS = (1200, 400)
DIGIT_HEIGHTS = (40.0, 120.0)
# Space before each digit, as a share of its width: as people leave it; almost none; and
# less than none, digits whose boxes overlap a little (some of them with strokes touching).
GAPS: dict[Spacing, tuple[float, float]] = {
    "apart": (0.15, 0.6),
    "tight": (0.0, 0.05),
    "overlapping": (-0.1, 0.0),
}
SIZE_JITTER = 0.12  # relative, digit to digit
BASELINE_JITTER = 0.1  # of the digit height
MAX_SLANT = 0.25
MARGIN = 20  # pixels around the number


@dataclass(frozen=True)
class NumberStyle:
    digit_height: float
    gaps: tuple[float, ...]  # before each digit after the first, of the digit's width
    sizes: tuple[float, ...]  # each digit's height relative to `digit_height`
    baselines: tuple[float, ...]  # each digit's vertical offset, of `digit_height`
    slant: float
    pen_width: float | None  # MNIST pixels, or None for the scanned strokes
    ink: str
    background: Background


def random_number_style(rng: np.random.Generator, count: int, spacing: Spacing) -> NumberStyle:
    gaps = GAPS[spacing]
    ink, background = (("black", "white"), ("black", "transparent"), ("white", "transparent"))[
        rng.integers(3)
    ]
    return NumberStyle(
        digit_height=float(rng.uniform(*DIGIT_HEIGHTS)),
        gaps=tuple(float(gap) for gap in rng.uniform(*gaps, count - 1)),
        sizes=tuple(float(size) for size in rng.uniform(1 - SIZE_JITTER, 1 + SIZE_JITTER, count)),
        baselines=tuple(
            float(shift) for shift in rng.uniform(-BASELINE_JITTER, BASELINE_JITTER, count)
        ),
        slant=float(rng.uniform(-MAX_SLANT, MAX_SLANT)),
        pen_width=float(rng.uniform(1.4, 3.6)) if rng.random() < 0.5 else None,
        ink=ink,
        background=background,
    )


@dataclass(frozen=True)
class WrittenNumber:
    image: bytes
    boxes: list[tuple[int, int, int, int]]  # each digit's strokes: x, y, width, height


def write_number(digits: np.ndarray, style: NumberStyle) -> WrittenNumber:
    """MNIST digits (k, 28, 28) written left to right in `style`, on a canvas that fits
    them (and no larger than 1200x400: the digits shrink together to fit if need be)."""
    strokes = []
    for digit, size in zip(digits, style.sizes, strict=True):
        height = style.digit_height * size
        pen = None if style.pen_width is None else height / 20 * style.pen_width
        drawn = brush_strokes(digit, DrawingStyle(digit_height=height, pen_width=pen,
                                                  slant=style.slant))  # fmt: skip
        strokes.append(drawn.crop(drawn.getbbox()))
    widths = [drawn.width for drawn in strokes]
    gaps = [round(gap * width) for gap, width in zip(style.gaps, widths[1:], strict=True)]
    width = sum(widths) + sum(gaps) + 2 * MARGIN
    height = max(drawn.height for drawn in strokes) + 2 * MARGIN
    height += round(2 * BASELINE_JITTER * style.digit_height)
    fit = min(1.0, (MAX_CANVAS[0] - 2 * MARGIN) / (width - 2 * MARGIN),
              (MAX_CANVAS[1] - 2 * MARGIN) / (height - 2 * MARGIN))  # fmt: skip
    if fit < 1:
        strokes = [drawn.resize((max(1, round(drawn.width * fit)), max(1, round(drawn.height *
                   fit)))) for drawn in strokes]  # fmt: skip
        gaps = [round(gap * fit) for gap in gaps]
        width = min(MAX_CANVAS[0], round(width * fit) + MARGIN)
        height = min(MAX_CANVAS[1], round(height * fit) + MARGIN)
    coverage = Image.new("L", (width, height), 0)
    boxes, left = [], MARGIN
    centre = height / 2
    for index, drawn in enumerate(strokes):
        left += gaps[index - 1] if index else 0
        top = round(centre - drawn.height / 2 + style.baselines[index] * style.digit_height * fit)
        top = min(max(0, top), height - drawn.height)
        coverage.paste(drawn, (left, top), drawn)
        boxes.append((left, top, drawn.width, drawn.height))
        left += drawn.width
    export = DrawingStyle(canvas_size=(width, height), ink=style.ink, background=style.background)
    return WrittenNumber(canvas_export(coverage, export), boxes)
