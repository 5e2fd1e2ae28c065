"""MNIST digits rendered as a browser canvas would export them, to test the serving pipeline.

A 28x28 MNIST digit is enlarged to canvas size, turned into solid brush-like strokes,
thickened or thinned, rotated and slanted, placed anywhere on a large canvas in either
polarity (or on a transparent background) and encoded as PNG or JPEG.
"""

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from app.mnist import DIGIT_BOX, IMAGE_SIDE
from app.serving.preprocessing import reshape_strokes

Background = Literal["white", "black", "transparent"]

# Pen strokes are traced on a grid this many times finer than MNIST's, and drawn this many
# times larger than the canvas before being reduced, which anti-aliases them.
SKELETON_SUPERSAMPLING = 3
PEN_SUPERSAMPLING = 2
# Round pens people draw with, in MNIST pixels: from hairline to marker (MNIST's own strokes
# are 1.6 to 3.7).
PEN_WIDTHS = (0.6, 4.5)


@dataclass(frozen=True)
class DrawingStyle:
    """How one digit is drawn; sizes are canvas pixels."""

    canvas_size: tuple[int, int] = (280, 280)
    digit_height: float = 200.0  # what MNIST's 20-pixel box becomes
    centre: tuple[float, float] = (0.5, 0.5)  # of the digit, as fractions of the canvas
    # None keeps the scanned strokes (their varying width); a number redraws the digit's
    # centre line with a round pen that many pixels wide, as a canvas brush would.
    pen_width: float | None = None
    # For the scanned strokes: MNIST pixels added to (or taken from) each edge, in thirds.
    stroke_change: float = 0.0
    rotation: float = 0.0  # degrees, counter-clockwise
    slant: float = 0.0  # horizontal shear: positive leans the top to the right
    ink: Literal["black", "white"] = "black"
    background: Background = "white"
    image_format: Literal["PNG", "JPEG"] = "PNG"
    jpeg_quality: int = 85


def skeletonize(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: the one-pixel-wide centre lines of a boolean image."""
    image = np.pad(mask.astype(np.uint8), 1)
    changed = True
    while changed:
        changed = False
        for first_pass in (True, False):
            # The 8 neighbours P2..P9, clockwise from north, of every inner pixel.
            north, north_east, east, south_east, south, south_west, west, north_west = (
                image[:-2, 1:-1],
                image[:-2, 2:],
                image[1:-1, 2:],
                image[2:, 2:],
                image[2:, 1:-1],
                image[2:, :-2],
                image[1:-1, :-2],
                image[:-2, :-2],
            )
            ring = [north, north_east, east, south_east, south, south_west, west, north_west]
            neighbours = sum(pixel.astype(np.int8) for pixel in ring)
            transitions = sum(
                ((ring[i] == 0) & (ring[(i + 1) % 8] == 1)).astype(np.int8) for i in range(8)
            )
            if first_pass:
                open_side = (north * east * south == 0) & (east * south * west == 0)
            else:
                open_side = (north * east * west == 0) & (north * south * west == 0)
            removable = (
                (image[1:-1, 1:-1] == 1)
                & (neighbours >= 2)
                & (neighbours <= 6)
                & (transitions == 1)
                & open_side
            )
            if removable.any():
                image[1:-1, 1:-1][removable] = 0
                changed = True
    return image[1:-1, 1:-1].astype(bool)


def pen_strokes(digit: np.ndarray, side: int, margin: int, pen_width: float) -> Image.Image:
    """The digit's centre lines drawn with a round pen, as an anti-aliased coverage mask."""
    fine = IMAGE_SIDE * SKELETON_SUPERSAMPLING
    enlarged = Image.fromarray(digit).resize((fine, fine), Image.Resampling.BICUBIC)
    rows, columns = np.nonzero(skeletonize(np.asarray(enlarged) > 127))

    zoom = PEN_SUPERSAMPLING
    surface = Image.new("L", ((side + 2 * margin) * zoom,) * 2, 0)
    draw = ImageDraw.Draw(surface)
    step = side / fine * zoom
    x = margin * zoom + (columns + 0.5) * step
    y = margin * zoom + (rows + 0.5) * step
    radius = pen_width * zoom / 2
    at = {(int(r), int(c)): (xi, yi) for r, c, xi, yi in zip(rows, columns, x, y, strict=True)}
    for (row, column), (xi, yi) in at.items():
        draw.ellipse((xi - radius, yi - radius, xi + radius, yi + radius), fill=255)
        # Join each point to its neighbours, so thin pens leave no gaps between the dots.
        for neighbour in (
            (row, column + 1),
            (row + 1, column - 1),
            (row + 1, column),
            (row + 1, column + 1),
        ):
            if neighbour in at:
                draw.line((xi, yi, *at[neighbour]), fill=255, width=max(1, round(2 * radius)))
    return surface.reduce(zoom)


def scanned_strokes(digit: np.ndarray, stroke_change: float) -> np.ndarray:
    """The digit as floats in [0, 1], its strokes made bolder or thinner by `stroke_change`
    MNIST pixels per edge (grey-level dilation or erosion on a grid three times finer)."""
    strokes = digit.astype(np.float32) / 255.0
    if not stroke_change:
        return strokes
    fine = IMAGE_SIDE * SKELETON_SUPERSAMPLING
    strokes = Image.fromarray(strokes, mode="F").resize((fine, fine), Image.Resampling.BICUBIC)
    steps = round(stroke_change * SKELETON_SUPERSAMPLING)
    return np.clip(reshape_strokes(np.asarray(strokes), steps), 0.0, 1.0)


def brush_strokes(digit: np.ndarray, style: DrawingStyle) -> Image.Image:
    """The digit's strokes at canvas scale as an 8-bit coverage mask ("L")."""
    scale = style.digit_height / DIGIT_BOX
    side = max(1, round(IMAGE_SIDE * scale))
    # Room for rotation, slant and a wide pen around the 28x28 field.
    margin = round(side * 0.3 + (style.pen_width or 0) + 4)
    if style.pen_width is None:
        smooth = Image.fromarray(scanned_strokes(digit, style.stroke_change), mode="F").resize(
            (side, side), Image.Resampling.BICUBIC
        )
        padded = np.zeros((side + 2 * margin, side + 2 * margin), dtype=np.float32)
        padded[margin : margin + side, margin : margin + side] = np.asarray(smooth)
        # A brush paints solid colour with a soft edge about a pixel wide.
        coverage = np.clip((padded - 0.5) * max(2.0, scale) + 0.5, 0.0, 1.0)
        mask = Image.fromarray(np.round(coverage * 255).astype(np.uint8), mode="L")
    else:
        mask = pen_strokes(digit, side, margin, style.pen_width)

    if style.rotation or style.slant:
        centre = mask.width / 2.0
        angle = np.deg2rad(style.rotation)
        cos, sin = np.cos(angle), np.sin(angle)
        # Output-to-input mapping of: shear (slant), then rotation, about the centre.
        forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, -style.slant], [0, 1]])
        inverse = np.linalg.inv(forward)
        offset = np.array([centre, centre]) - inverse @ np.array([centre, centre])
        coefficients = (*inverse[0], offset[0], *inverse[1], offset[1])
        mask = mask.transform(mask.size, Image.Transform.AFFINE, coefficients, Image.BILINEAR)
    return mask


def render_drawing(digit: np.ndarray, style: DrawingStyle) -> bytes:
    """Encode one 28x28 uint8 MNIST digit as a canvas export in `style`."""
    strokes = brush_strokes(digit, style)
    width, height = style.canvas_size
    coverage = Image.new("L", style.canvas_size, 0)
    left = round(style.centre[0] * width - strokes.width / 2)
    top = round(style.centre[1] * height - strokes.height / 2)
    coverage.paste(strokes, (left, top))
    return canvas_export(coverage, style)


def canvas_export(coverage: Image.Image, style: DrawingStyle) -> bytes:
    """Strokes (an 8-bit coverage mask of the whole canvas) in the style's ink, on its
    background, encoded as a browser exports a canvas."""
    if style.image_format == "JPEG" and style.background == "transparent":
        raise ValueError("JPEG has no transparency")
    ink_level = 0 if style.ink == "black" else 255
    if style.background == "transparent":
        image = Image.new("RGBA", coverage.size, (ink_level, ink_level, ink_level, 0))
        image.putalpha(coverage)
    else:
        paper = Image.new("RGB", coverage.size, "white" if style.background == "white" else 0)
        ink = Image.new("RGB", coverage.size, (ink_level, ink_level, ink_level))
        image = Image.composite(ink, paper, coverage)

    buffer = io.BytesIO()
    if style.image_format == "JPEG":
        image.save(buffer, "JPEG", quality=style.jpeg_quality)
    else:
        image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def random_style(
    rng: np.random.Generator,
    *,
    pen_share: float = 0.5,
    pen_widths: tuple[float, float] = PEN_WIDTHS,
    stroke_changes: tuple[float, float] = (-0.33, 1.0),
    max_rotation: float = 0.0,
    max_slant: float = 0.0,
) -> DrawingStyle:
    """A plausible way for a person to draw a digit on a canvas, drawn from `rng`.

    A share `pen_share` of digits is redrawn with a round pen `pen_widths` MNIST pixels wide
    (MNIST's own strokes: 1.6 to 3.7), from hairline to marker by default; the others keep
    MNIST's scanned strokes, made bolder or thinner by up to `stroke_changes` pixels per edge.
    """
    canvas_size = ((280, 280), (400, 400), (640, 480))[rng.integers(3)]
    digit_height = float(rng.uniform(0.3, 0.85) * min(canvas_size))
    # Anywhere, as long as the whole digit (and a little margin) is on the canvas.
    half_extent = 0.55 * digit_height
    centre = tuple(
        float(rng.uniform(half_extent, side - half_extent) / side) for side in canvas_size
    )
    if rng.random() < pen_share:
        pen_width, stroke_change = digit_height / DIGIT_BOX * float(rng.uniform(*pen_widths)), 0.0
    else:
        pen_width, stroke_change = None, float(rng.uniform(*stroke_changes))
    ink, background = (
        ("black", "white"),
        ("white", "black"),
        ("black", "transparent"),
        ("white", "transparent"),
    )[rng.integers(4)]
    image_format = "JPEG" if background != "transparent" and rng.random() < 0.3 else "PNG"
    return DrawingStyle(
        canvas_size=canvas_size,
        digit_height=digit_height,
        centre=centre,
        pen_width=pen_width,
        stroke_change=stroke_change,
        rotation=float(rng.uniform(-max_rotation, max_rotation)),
        slant=float(rng.uniform(-max_slant, max_slant)),
        ink=ink,
        background=background,
        image_format=image_format,
        jpeg_quality=int(rng.integers(60, 95)),
    )
