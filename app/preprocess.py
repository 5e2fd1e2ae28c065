"""From image bytes to the network's input: 784 floats in [0, 1], prepared the way MNIST was.

MNIST digits are white on black, scaled (keeping their aspect ratio, with anti-aliasing) so
that the longer side of their bounding box is 20 pixels, and placed in a 28x28 field with
their centre of mass at pixel (14, 14). Measured on the 60,000 training digits: the extent of
pixels above 0.5 is 20 in 99 % of them, and the centre of mass is 14.00 +- 0.29 on each axis,
the spread of a shift rounded to whole pixels. Drawings are brought to exactly that form.

One more step makes drawings from any brush look like MNIST: pen width. A thin pen on a large
canvas shrinks to faint hairlines, a marker to blobs, and a Dense network trained on MNIST
misreads both. Stroke width is measured as 2 x area / perimeter of the strokes, in MNIST
pixels; MNIST's own training digits measure 1.6 to 3.7 (5th to 95th percentile). Strokes
outside that range are dilated or eroded, at four to eight times MNIST's scale, to its
nearest end.
"""

import io
import warnings
from dataclasses import dataclass

import numpy as np
import pyspng
from PIL import Image, ImageOps

from app.data import IMAGE_SIDE

DIGIT_BOX = 20
# PNG modes decoded by libspng (RGB only without a transparent colour, which it would drop).
FAST_PNG_MODES = ("RGBA", "RGB")
CENTRE = 14.0
SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")

# Larger images are reduced to this side before the pixel work; a digit in it still spans far
# more than the 20 pixels it ends up as.
WORKING_SIDE = 512
# Ink darker (or lighter) than the background by less than this, at its strongest, is no
# drawing: a blank canvas, a JPEG of one, a flat colour.
MIN_CONTRAST = 0.2
# After stretching the contrast, ink below this is paper texture, JPEG ringing or scanner noise.
NOISE_FLOOR = 0.15
# Pixels above this belong to the strokes when measuring the bounding box.
STROKE_LEVEL = 0.5
# MNIST's stroke widths, 5th and 95th percentiles, in pixels of its 28x28 field.
THINNEST_STROKE = 1.6
BOLDEST_STROKE = 3.7
# Erosion by more than this share of the stroke width would break strokes apart.
MAX_EROSION = 0.3
# Strokes are measured and reshaped with the digit's box at 4 to 8 times MNIST's 20 pixels,
# in a margin wide enough for the boldest dilation.
FINE_BOX = 4 * 20
FINE_MARGIN = 8
# About this many pixels per side are sampled to judge the strokes' colour.
STATISTICS_SIDE = 64
# Fewer stroke pixels than this share of the image (or 4 pixels) is a speck, not a digit.
MIN_INK_SHARE = 0.0005


class PreprocessError(ValueError):
    """The bytes cannot become a digit; `status_code` is the HTTP status that says why."""

    status_code = 422


class UnsupportedImageError(PreprocessError):
    status_code = 415


class ImageTooLargeError(PreprocessError):
    status_code = 413


class EmptyDrawingError(PreprocessError):
    status_code = 422


@dataclass(frozen=True)
class Limits:
    """Bounds checked before any pixel is decoded."""

    max_pixels: int = 4096 * 4096
    max_side: int = 8192


def open_image(data: bytes, limits: Limits) -> Image.Image:
    """Open PNG, JPEG, WebP, GIF (first frame) or BMP bytes, reading only the header, and
    refuse images over the limits before any pixel is decoded."""
    if not data:
        raise UnsupportedImageError("the request has no image: the body is empty")
    limit = f"the limit is {limits.max_pixels:,} pixels and {limits.max_side} per side"
    try:
        # Pillow warns past its own bomb threshold, and raises past twice that; ours, checked
        # below before any decoding, is lower, so its warning is just noise.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError:
        raise ImageTooLargeError(f"the image is too large: {limit}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise UnsupportedImageError(
            "the body is not a PNG, JPEG, WebP, GIF or BMP image"
            + (f" ({error})" if not isinstance(error, Image.UnidentifiedImageError) else "")
        ) from None

    width, height = image.size
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise ImageTooLargeError(f"the image is too large: {width}x{height} pixels; {limit}")
    if image.format == "JPEG":
        # Let the JPEG decoder scale by 1/2..1/8 while decoding: far less work for photos.
        image.draft(None if image.mode == "CMYK" else "L", (WORKING_SIDE, WORKING_SIDE))
    return image


def load_pixels(image: Image.Image, data: bytes) -> Image.Image:
    """Decode an opened image, upright as its EXIF orientation says (phone photos)."""
    if image.format == "PNG" and image.mode in FAST_PNG_MODES and "transparency" not in image.info:
        # What canvases export. libspng decodes these three times faster than Pillow does;
        # anything it refuses goes to Pillow, which says what is wrong with it.
        try:
            return Image.fromarray(pyspng.load(data, image.mode), image.mode)
        except RuntimeError:
            pass
    try:
        image.load()
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise UnsupportedImageError(f"the image data is corrupt or truncated ({error})") from None


def grey_and_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """8-bit brightness ("L") of every pixel, and the opacity ("L") when some is transparent.

    A transparent margin carries nothing, so an image with one is cropped to its visible
    part (and a pixel more): a canvas drawing shrinks to its strokes before any other work.
    """
    if image.mode.startswith("I") or image.mode == "F":
        # 16-bit greyscale: Pillow's own conversion to 8 bits clips instead of scaling.
        values = np.asarray(image, dtype=np.float32)
        full_scale = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        eight_bit = np.clip(values * (255.0 / full_scale), 0, 255).round().astype(np.uint8)
        return Image.fromarray(eight_bit, mode="L"), None
    if image.has_transparency_data:
        rgba = image if image.mode in ("RGBA", "LA") else image.convert("RGBA")
        alpha = rgba.getchannel("A")
        if alpha.getextrema()[0] < 255:
            visible = alpha.getbbox()
            if visible is None:
                raise EmptyDrawingError("the drawing is empty: the image is fully transparent")
            left, top, right, bottom = visible
            rgba = rgba.crop(
                (
                    max(0, left - 1),
                    max(0, top - 1),
                    min(rgba.width, right + 1),
                    min(rgba.height, bottom + 1),
                )
            )
            return rgba.convert("L"), rgba.getchannel("A")
        image = rgba
    if image.mode == "CMYK":
        image = image.convert("RGB")
    return image.convert("L"), None


def flatten_alpha(grey: Image.Image, alpha: Image.Image) -> tuple[Image.Image, int]:
    """Composite onto the background the strokes stand out from; also return that level.

    A canvas exported with a transparent background holds black (or white) strokes over
    transparent black; flattening it naively gives all black. The strokes' own colour tells
    which background they were drawn for: the opposite of the visible pixels' mean.
    """
    # A colour, not a shape, is wanted: every few pixels tell it as well as all of them.
    step = max(1, min(grey.size) // STATISTICS_SIDE)
    opacity = np.asarray(alpha)[::step, ::step].ravel().astype(np.float32)
    brightness = np.asarray(grey)[::step, ::step].ravel().astype(np.float32)
    mean_visible = float(brightness @ opacity) / max(float(opacity.sum()), 1.0)
    background = 255 if mean_visible < 127.5 else 0
    return Image.composite(grey, Image.new("L", grey.size, background), alpha), background


def border_level(image: np.ndarray) -> float:
    """The background level: the median of the outer ring, which is paper in a drawing."""
    ring = max(1, min(image.shape) // 50)
    border = np.concatenate(
        [
            image[:ring].ravel(),
            image[-ring:].ravel(),
            image[:, :ring].ravel(),
            image[:, -ring:].ravel(),
        ]
    )
    return float(np.median(border))


def reduce_to_working_size(image: Image.Image) -> Image.Image:
    if max(image.size) <= WORKING_SIDE:
        return image
    if image.mode in ("P", "1"):
        # Palette indices and single bits cannot be averaged; their colours can.
        image = image.convert("RGBA" if image.has_transparency_data else "L")
    else:
        image = image.copy()  # thumbnail() works in place
    image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
    return image


def ink_image(image: Image.Image) -> np.ndarray:
    """8-bit white-on-black ink whatever the polarity, with the background at exactly 0."""
    grey, alpha = grey_and_alpha(reduce_to_working_size(image))
    if alpha is None:
        pixels = np.asarray(grey)
        background = border_level(pixels)
    else:
        flattened, background = flatten_alpha(grey, alpha)
        pixels = np.asarray(flattened)
    # Dark ink on light paper, or light ink on a dark ground: ink is the distance from paper.
    dark_ink = background >= 127.5
    strongest = (background - int(pixels.min())) if dark_ink else (int(pixels.max()) - background)
    if strongest < MIN_CONTRAST * 255:
        raise EmptyDrawingError("the drawing is empty: no strokes stand out from the background")
    levels = np.arange(256, dtype=np.float32)
    distance = (background - levels) if dark_ink else (levels - background)
    # Stretch the contrast so the strongest ink is 1, and drop what lies under the noise floor:
    # one 256-entry table, looked up for every pixel.
    ink = np.clip((distance / strongest - NOISE_FLOOR) / (1.0 - NOISE_FLOOR), 0.0, 1.0)
    return np.take(np.round(ink * 255).astype(np.uint8), pixels)


def stroke_bounds(strokes: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), end-exclusive, of the True pixels of a stroke mask."""
    rows = np.flatnonzero(strokes.any(axis=1))
    columns = np.flatnonzero(strokes.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1


def ink_stroke_bounds(ink: np.ndarray) -> tuple[int, int, int, int]:
    """Stroke bounds of 8-bit ink; too few stroke pixels are no digit."""
    strokes = ink > STROKE_LEVEL * 255
    if np.count_nonzero(strokes) < max(4, MIN_INK_SHARE * ink.size):
        raise EmptyDrawingError("the drawing is empty or too faint to be a digit")
    return stroke_bounds(strokes)


def resample_to_fine_scale(
    ink: np.ndarray, bounds: tuple[int, int, int, int]
) -> tuple[np.ndarray, int]:
    """The strokes' box, with a margin, at a scale where its longer side is FINE_BOX to twice
    that: large drawings are reduced by a whole factor (plain averaging of pixel blocks, a
    good anti-aliasing filter and the cheapest there is), small ones enlarged to FINE_BOX.

    Returns the floats in [0, 1] and the longer side of the strokes' box in them. Stroke widths
    are measured and reshaped at this scale: fine enough for sub-pixel MNIST widths, small
    enough to be cheap, whatever the size of the image.
    """
    top, bottom, left, right = bounds
    digit_size = max(bottom - top, right - left)
    factor = digit_size // FINE_BOX
    # Whole pixels around the box, background where they pass the image's edges.
    pad = FINE_MARGIN * max(1, factor) + 1
    region = np.zeros((bottom - top + 2 * pad, right - left + 2 * pad), dtype=np.uint8)
    inside_top, inside_left = max(0, top - pad), max(0, left - pad)
    inside = ink[inside_top : bottom + pad, inside_left : right + pad]
    row, column = inside_top - (top - pad), inside_left - (left - pad)
    region[row : row + inside.shape[0], column : column + inside.shape[1]] = inside
    image = Image.fromarray(region, mode="L")
    if factor >= 1:
        fine = image.reduce(factor)
        fine_size = digit_size / factor
    else:
        scale = FINE_BOX / digit_size
        fine = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR
        )
        fine_size = FINE_BOX
    return np.asarray(fine, dtype=np.float32) * (1 / 255), round(fine_size)


def stroke_width(strokes: np.ndarray) -> float:
    """Mean width of the strokes in a boolean image: 2 x area / perimeter, for long strokes.

    The perimeter is counted as pixel edges between stroke and background, times pi/4: a
    staircase is that much longer than the slanted edge it draws, on average over directions.
    """
    area = np.count_nonzero(strokes)
    edges = np.count_nonzero(strokes[1:] != strokes[:-1]) + np.count_nonzero(
        strokes[:, 1:] != strokes[:, :-1]
    )
    return 2.0 * area / max(1.0, edges * np.pi / 4)


def morph_step(image: np.ndarray, grow: bool, diagonal: bool) -> np.ndarray:
    """One pixel of dilation (grow) or erosion, with a 3x3 square or a plus-shaped element."""
    combine = np.maximum if grow else np.minimum
    padded = np.pad(image, 1, mode="constant" if grow else "edge")
    height, width = image.shape
    result = image.copy()
    for row, column in ((0, 1), (1, 0), (1, 2), (2, 1)) + (
        ((0, 0), (0, 2), (2, 0), (2, 2)) if diagonal else ()
    ):
        combine(result, padded[row : row + height, column : column + width], out=result)
    return result


def reshape_strokes(fine: np.ndarray, pixels: int) -> np.ndarray:
    """Move every stroke edge out (pixels > 0) or in by `pixels`, with a near-round pen.

    Alternating square and plus-shaped steps grow an octagon, close to a disk, so slanted
    strokes change width as much as upright ones.
    """
    for step in range(abs(pixels)):
        fine = morph_step(fine, grow=pixels > 0, diagonal=step % 2 == 1)
    return fine


def normalize_stroke_width(fine: np.ndarray, digit_size: int) -> np.ndarray:
    """Dilate hairlines and erode blobs (at fine scale, where the strokes' box is `digit_size`
    pixels on its longer side) into MNIST's range of stroke widths."""
    width = stroke_width(fine > STROKE_LEVEL)
    mnist_width = width * DIGIT_BOX / digit_size
    if THINNEST_STROKE <= mnist_width <= BOLDEST_STROKE:
        return fine
    target = min(max(mnist_width, THINNEST_STROKE), BOLDEST_STROKE)
    # Moving each edge by r changes both the width (w + 2r) and the box (size + 2r), which is
    # what the scaling to 20 pixels divides by: solve (w + 2r) * 20 / (size + 2r) = target.
    shift = (target * digit_size / DIGIT_BOX - width) / (2.0 * (1.0 - target / DIGIT_BOX))
    shift = max(shift, -MAX_EROSION * width)
    return reshape_strokes(fine, round(shift))


def fit_to_mnist_field(ink: np.ndarray) -> np.ndarray:
    """Scale the strokes' box to 20 pixels on its longer side, centred by mass in 28x28."""
    top, bottom, left, right = stroke_bounds(ink > STROKE_LEVEL)
    height, width = bottom - top, right - left
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Lanczos: the sharpest anti-aliased reduction, and cheap at these few pixels.
    digit = Image.fromarray(ink, mode="F").resize(
        size, Image.Resampling.LANCZOS, box=(left, top, right, bottom)
    )
    digit = np.clip(np.asarray(digit), 0.0, 1.0)

    # Centre of mass from the row and column sums: two small dot products.
    row_mass, column_mass = digit.sum(axis=1), digit.sum(axis=0)
    mass = row_mass.sum()
    offset_row = round(CENTRE - float(row_mass @ np.arange(len(row_mass))) / mass)
    offset_column = round(CENTRE - float(column_mass @ np.arange(len(column_mass))) / mass)

    field = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    # Paste with clipping: an odd shape's mass centre can push an edge past the field.
    field_rows = slice(max(0, offset_row), min(IMAGE_SIDE, offset_row + digit.shape[0]))
    field_columns = slice(max(0, offset_column), min(IMAGE_SIDE, offset_column + digit.shape[1]))
    digit_rows = slice(field_rows.start - offset_row, field_rows.stop - offset_row)
    digit_columns = slice(field_columns.start - offset_column, field_columns.stop - offset_column)
    field[field_rows, field_columns] = digit[digit_rows, digit_columns]
    return field


def model_input_from_image(image: Image.Image, data: bytes) -> np.ndarray:
    """An opened image (and its bytes) -> float32 (784,) in [0, 1], white digit on black."""
    ink = ink_image(load_pixels(image, data))
    fine = normalize_stroke_width(*resample_to_fine_scale(ink, ink_stroke_bounds(ink)))
    return fit_to_mnist_field(fine).reshape(IMAGE_SIDE * IMAGE_SIDE)


def preprocess(data: bytes, limits: Limits | None = None) -> np.ndarray:
    """Image bytes -> float32 (784,) in [0, 1], white digit on black as in MNIST."""
    return model_input_from_image(open_image(data, limits or Limits()), data)
