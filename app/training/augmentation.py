"""On-the-fly augmentation of MNIST batches: what people's drawings vary in, after the
serving pipeline has normalised them.

The pipeline fits every drawing's box to 20 pixels and centres its mass, so what is left to
learn is the rest: slant, rotation, stroke width and the wobble of a hand. Each image gets a
random rotation and shear about its centre of mass, rescaled so its box is 20 pixels again
(as the pipeline would do), a smooth elastic distortion, and thicker or thinner strokes.
Everything is vectorised over the batch: a 128-image batch takes about a millisecond.
"""

from dataclasses import dataclass

import numpy as np

from app.mnist import CENTRE, DIGIT_BOX, IMAGE_SIDE, INPUT_SIZE

ELASTIC_GRID = 4  # control points per side of the smooth random displacement field


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random changes; each is drawn uniformly per image."""

    max_rotation: float = 15.0  # degrees
    max_shear: float = 0.3  # horizontal shear, as the slant of handwriting
    scale_jitter: float = 0.08  # relative, around the 20-pixel box
    max_shift: float = 0.5  # pixels: the rounding of MNIST's own centring
    elastic_pixels: float = 1.2  # standard deviation of the displacement at control points
    max_stroke_change: float = 0.7  # share of one pixel of dilation (or, negative, erosion)


def _interpolation_matrix(size: int, grid: int) -> np.ndarray:
    """(size, grid) linear interpolation weights from `grid` control points to `size` pixels."""
    positions = np.linspace(0, grid - 1, size)
    lower = np.clip(np.floor(positions).astype(int), 0, grid - 2)
    fraction = positions - lower
    weights = np.zeros((size, grid), dtype=np.float32)
    weights[np.arange(size), lower] = 1 - fraction
    weights[np.arange(size), lower + 1] = fraction
    return weights


UPSAMPLE = _interpolation_matrix(IMAGE_SIDE, ELASTIC_GRID)
PIXEL_POSITIONS = np.indices((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32).reshape(2, -1)


def _affine_matrices(
    strokes: np.ndarray, rng: np.random.Generator, augmentation: Augmentation
) -> np.ndarray:
    """(n, 2, 2) output-from-input matrices in (row, column) coordinates, for boolean stroke
    masks (n, 28, 28)."""
    count = len(strokes)
    angle = np.deg2rad(rng.uniform(-augmentation.max_rotation, augmentation.max_rotation, count))
    shear = rng.uniform(-augmentation.max_shear, augmentation.max_shear, count)
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    # A slant moves the top of a column right: column += -shear * (row - centre).
    shearing = np.zeros((count, 2, 2), dtype=np.float64)
    shearing[:, 0, 0] = shearing[:, 1, 1] = 1.0
    shearing[:, 1, 0] = -shear
    matrices = rotation @ shearing

    # Where the stroke pixels land: rescale so their extent is 20 pixels again, as the serving
    # pipeline would (a rotated box's corners would overstate it).
    inside = strokes.reshape(count, -1)
    extent = np.zeros(count)
    for axis in range(2):
        moved = matrices[:, axis, :] @ PIXEL_POSITIONS  # (n, 784), contiguous per image
        spread = np.where(inside, moved, -np.inf).max(axis=1) + np.where(
            inside, -moved, -np.inf
        ).max(axis=1)
        extent = np.maximum(extent, spread + 1.0)
    extent = np.where(np.isfinite(extent), extent, DIGIT_BOX)
    jitter = rng.uniform(1 - augmentation.scale_jitter, 1 + augmentation.scale_jitter, count)
    scale = DIGIT_BOX / np.maximum(extent, 1.0) * jitter
    return matrices * scale[:, None, None]


def _elastic_field(count: int, rng: np.random.Generator, pixels: float) -> np.ndarray:
    """(n, 2, 28, 28) smooth random displacements, bilinear between a coarse grid."""
    control = rng.normal(0.0, pixels, (count, 2, ELASTIC_GRID, ELASTIC_GRID)).astype(np.float32)
    return UPSAMPLE @ control @ UPSAMPLE.T


def _sample_bilinear(images: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """images (n, 28, 28) sampled at float coordinates (n, 28, 28); zero outside."""
    count, width = len(images), IMAGE_SIDE + 2
    padded = np.zeros((count, width, width), dtype=np.float32)
    padded[:, 1:-1, 1:-1] = images
    flat = padded.ravel()
    # Shifted by the one-pixel zero border, and kept inside it.
    rows = np.clip(rows + 1, 0, IMAGE_SIDE + 0.999)
    columns = np.clip(columns + 1, 0, IMAGE_SIDE + 0.999)
    row0, column0 = np.floor(rows), np.floor(columns)
    row_fraction, column_fraction = rows - row0, columns - column0
    index = (
        np.arange(count)[:, None, None] * width * width
        + row0.astype(np.intp) * width
        + column0.astype(np.intp)
    )
    top_left, top_right = flat[index], flat[index + 1]
    bottom_left, bottom_right = flat[index + width], flat[index + width + 1]
    top = top_left + (top_right - top_left) * column_fraction
    bottom = bottom_left + (bottom_right - bottom_left) * column_fraction
    return top + (bottom - top) * row_fraction


def _change_strokes(images: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Blend towards a one-pixel dilation (amount > 0) or erosion (< 0), plus-shaped."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    neighbours = (
        padded[:, :-2, 1:-1],
        padded[:, 2:, 1:-1],
        padded[:, 1:-1, :-2],
        padded[:, 1:-1, 2:],
    )
    grow = amount > 0
    # Dilate where the amount is positive, erode elsewhere: one pass over the neighbours.
    extreme = images.copy()
    for neighbour in neighbours:
        np.copyto(
            extreme,
            np.where(
                grow[:, None, None], np.maximum(extreme, neighbour), np.minimum(extreme, neighbour)
            ),
        )
    return images + np.abs(amount)[:, None, None] * (extreme - images)


def augment_batch(
    images: np.ndarray, rng: np.random.Generator, augmentation: Augmentation
) -> np.ndarray:
    """uint8 (n, 28, 28) MNIST images -> float32 (n, 784) augmented model inputs in [0, 1]."""
    count = len(images)
    pixels = images.astype(np.float32) / 255.0
    rows, columns = np.indices((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    mass = pixels.sum(axis=(1, 2)) + 1e-6
    centre_row = (pixels * rows).sum(axis=(1, 2)) / mass
    centre_column = (pixels * columns).sum(axis=(1, 2)) / mass

    # Output pixel -> input pixel: the inverse affine about the mass centre, then elastic.
    inverse = np.linalg.inv(_affine_matrices(pixels > 0.5, rng, augmentation)).astype(np.float32)
    shift = rng.uniform(-augmentation.max_shift, augmentation.max_shift, (count, 2))
    output_row = rows[None] - CENTRE - shift[:, 0, None, None].astype(np.float32)
    output_column = columns[None] - CENTRE - shift[:, 1, None, None].astype(np.float32)
    field = _elastic_field(count, rng, augmentation.elastic_pixels)
    source_row = (
        inverse[:, 0, 0, None, None] * output_row
        + inverse[:, 0, 1, None, None] * output_column
        + centre_row[:, None, None]
        + field[:, 0]
    )
    source_column = (
        inverse[:, 1, 0, None, None] * output_row
        + inverse[:, 1, 1, None, None] * output_column
        + centre_column[:, None, None]
        + field[:, 1]
    )
    warped = _sample_bilinear(pixels, source_row, source_column)
    stroke_change = rng.uniform(
        -augmentation.max_stroke_change, augmentation.max_stroke_change, count
    ).astype(np.float32)
    changed = _change_strokes(warped, stroke_change)
    return np.clip(changed, 0.0, 1.0).reshape(count, INPUT_SIZE)
