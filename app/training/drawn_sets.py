"""Digits drawn as people draw them on the page, then preprocessed as the server does: the
canvas-realistic evaluation set, the style set, and the drawings calibration is fitted on."""

import numpy as np

from app.serving.preprocessing import preprocess
from app.training.drawings import DrawingStyle, random_style, render_drawing
from app.training.processes import mapped

MAX_ROTATION = 15.0
MAX_SLANT = 0.3


def canvas_styles(count: int, seed: int) -> list[DrawingStyle]:
    """`count` seeded drawing styles: canvas sizes, pens, rotation, slant, backgrounds."""
    rng = np.random.default_rng(seed)
    return [random_style(rng, max_rotation=MAX_ROTATION, max_slant=MAX_SLANT) for _ in range(count)]


def drawn_model_input(digit_and_style: tuple[np.ndarray, DrawingStyle]) -> np.ndarray:
    """Render one digit as a canvas export and preprocess it exactly as the server does."""
    digit, style = digit_and_style
    return preprocess(render_drawing(digit, style))


def drawn_inputs(digits: np.ndarray, styles: list[DrawingStyle], workers: int) -> np.ndarray:
    """Model inputs of digits drawn in `styles`; rendering is spread over `workers` processes."""
    jobs = list(zip(digits, styles, strict=True))
    return np.stack(mapped(drawn_model_input, jobs, workers, chunksize=64))
