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

Pillow reads and checks the image and decodes what libspng does not; the pixel work is OpenCV
on 8-bit arrays, one C call per step: 2.5 times faster than the same steps in Pillow and
NumPy, for the same accuracy.
"""

import io
import warnings
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import pyspng
from PIL import Image, ImageOps

from app.mnist import CENTRE, DIGIT_BOX, IMAGE_SIDE, INPUT_SIZE
from app.serving.image_files import CostlyImageError, check_decoding_cost, has_image_signature

# PNG modes decoded by libspng (RGB only without a transparent colour, which it would drop).
FAST_PNG_MODES = ("RGBA", "RGB")
SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
NOT_AN_IMAGE = "the body is not a PNG, JPEG, WebP, GIF or BMP image"
MAX_EXIF_BYTES = 64 * 1024

# Larger images are reduced to this side before the pixel work; a digit in it still spans far
# more than the 20 pixels it ends up as.
WORKING_SIDE = 512
# Ink darker (or lighter) than the background by less than this, at its strongest, is no
# drawing: a blank canvas, a JPEG of one, a flat colour.
MIN_CONTRAST = 0.2
# After stretching the contrast, ink below this is paper texture, JPEG ringing or scanner noise.
NOISE_FLOOR = 0.15
# Pixels above this belong to the strokes when measuring the bounding box; in 8 bits.
STROKE_LEVEL = 0.5
STROKE_THRESHOLD = round(STROKE_LEVEL * 255) - 1  # above 127: at least 128
# MNIST's stroke widths, 5th and 95th percentiles, in pixels of its 28x28 field.
THINNEST_STROKE = 1.6
BOLDEST_STROKE = 3.7
# Erosion by more than this share of the stroke width would break strokes apart.
MAX_EROSION = 0.3
# Strokes are measured and reshaped with the digit's box at 4 to 8 times MNIST's 20 pixels,
# in a margin wide enough for the boldest dilation.
FINE_BOX = 4 * DIGIT_BOX
FINE_MARGIN = 8
# About this many pixels per side are sampled to judge the strokes' colour.
STATISTICS_SIDE = 64
# Fewer stroke pixels than this share of the image (or 4 pixels) is a speck, not a digit.
MIN_INK_SHARE = 0.0005
# 3x3 structuring elements for dilation and erosion: a square and a plus.
SQUARE = np.ones((3, 3), dtype=np.uint8)
PLUS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))

# A server runs one request per worker at a time; OpenCV's own threads would only compete
# with the other workers for the cores, on images this small.
cv2.setNumThreads(1)


class PreprocessError(ValueError):
    """The bytes cannot become a digit; `status_code` is the HTTP status that says why, and
    `reason` the short label of the refusal in the metrics (one of a few)."""

    status_code = 422
    reason = "unreadable_image"


class UnsupportedImageError(PreprocessError):
    status_code = 415
    reason = "unsupported_image"


class ImageTooLargeError(PreprocessError):
    status_code = 413
    reason = "image_too_large"


class CostlyDecodingError(PreprocessError):
    """The image would cost far more to decode than its pixels, or did: a structure of
    thousands of parts, or a decoding stopped at its CPU or memory limit."""

    status_code = 422
    reason = "costly_decoding"


class EmptyDrawingError(PreprocessError):
    status_code = 422
    reason = "empty_drawing"


@dataclass(frozen=True)
class Limits:
    """Bounds checked before any pixel is decoded."""

    max_pixels: int = 4096 * 4096
    max_side: int = 8192


def check_format(data: bytes) -> None:
    """Refuse at once bytes that no supported format begins with."""
    if not data:
        raise UnsupportedImageError("the request has no image: the body is empty")
    if not has_image_signature(data):
        raise UnsupportedImageError(NOT_AN_IMAGE)


def open_image(data: bytes, limits: Limits) -> Image.Image:
    """Open PNG, JPEG, WebP, GIF (first frame) or BMP bytes, reading only the header, and
    refuse images over the limits before any pixel is decoded."""
    check_format(data)
    try:
        check_decoding_cost(data)
    except CostlyImageError as error:
        raise CostlyDecodingError(f"the image costs too much to decode: {error}") from None
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
            NOT_AN_IMAGE
            + (f" ({error})" if not isinstance(error, Image.UnidentifiedImageError) else "")
        ) from None

    width, height = image.size
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise ImageTooLargeError(f"the image is too large: {width}x{height} pixels; {limit}")
    if image.format == "JPEG":
        # Let the JPEG decoder scale by 1/2..1/8 while decoding: far less work for photos.
        # Not below twice the working size: the decoder's scaling averages thin strokes
        # away before the contrast is judged (a 3-pixel pencil line on a 3000-pixel photo).
        image.draft(None if image.mode == "CMYK" else "L", (2 * WORKING_SIDE, 2 * WORKING_SIDE))
    return image


def load_pixels(image: Image.Image, data: bytes) -> np.ndarray:
    """Decode an opened image, upright as its EXIF orientation says (phone photos), into an
    8-bit array: (height, width) grey, or RGB or RGBA on a last axis of 3 or 4."""
    if image.format == "PNG" and image.mode in FAST_PNG_MODES and "transparency" not in image.info:
        # What canvases export. libspng decodes these three times faster than Pillow does;
        # anything it refuses goes to Pillow, which says what is wrong with it.
        try:
            return pyspng.load(data, image.mode)
        except RuntimeError:
            pass
    if len(image.info.get("exif", b"")) > MAX_EXIF_BYTES:
        # Only the orientation is wanted; parsing 65,000 entries took a second and logged
        # megabytes of warnings. (A JPEG's EXIF cannot exceed 64 kB.)
        raise CostlyDecodingError(f"the image's EXIF metadata is over {MAX_EXIF_BYTES // 1024} kB")
    try:
        # Pillow warns about malformed metadata it can read anyway: not worth a log line.
        with warnings.catch_warnings(action="ignore"):
            image.load()
            image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise UnsupportedImageError(f"the image data is corrupt or truncated ({error})") from None
    return pillow_to_array(image)


def pillow_to_array(image: Image.Image) -> np.ndarray:
    if image.mode.startswith("I") or image.mode == "F":
        # 16-bit greyscale: Pillow's own conversion to 8 bits clips instead of scaling.
        # Scaled in one OpenCV call, straight to 8 bits: a float copy of a 4096x4096 image
        # would take 64 MB.
        values = np.asarray(image)
        full_scale = 65535 if image.mode.startswith("I;16") or values.max() > 255 else 255
        return cv2.convertScaleAbs(np.maximum(values, 0), alpha=255 / full_scale)
    if image.has_transparency_data:
        return np.asarray(image.convert("RGBA"))
    if image.mode == "CMYK":
        image = image.convert("RGB")  # Pillow has no direct CMYK to greyscale conversion
    return np.asarray(image.convert("L"))


def reduce_to_working_size(pixels: np.ndarray, working_side: int) -> tuple[np.ndarray, float]:
    """The image with its longer side at most `working_side`, and the scale it was reduced by."""
    height, width = pixels.shape[:2]
    scale = working_side / max(height, width)
    if scale >= 1:
        return pixels, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), scale


def crop_to_visible(pixels: np.ndarray) -> tuple[np.ndarray, int, int]:
    """An image with transparency cropped to its visible part (and a pixel more), with the
    crop's left and top: a transparent margin carries nothing, so a canvas drawing shrinks
    to its strokes before any other work."""
    if pixels.ndim == 2 or pixels.shape[2] != 4:
        return pixels, 0, 0
    # Each pixel read as one little-endian 32-bit number, whose top byte is the opacity: the
    # visible ones in one comparison, 4 times as fast as extracting the channel first.
    visible = pixels.view("<u4")[:, :, 0] >= 1 << 24
    left, top, width, height = cv2.boundingRect(visible.view(np.uint8))
    if width == 0:
        raise EmptyDrawingError("the drawing is empty: the image is fully transparent")
    first_row, first_column = max(0, top - 1), max(0, left - 1)
    visible = pixels[first_row : top + height + 1, first_column : left + width + 1]
    return visible, first_column, first_row


def grey_and_alpha(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """8-bit brightness of every pixel, and the opacity when some is transparent."""
    if pixels.ndim == 2:
        return pixels, None
    if pixels.shape[2] == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), None
    alpha = cv2.extractChannel(pixels, 3)
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGBA2GRAY)
    return grey, None if cv2.minMaxLoc(alpha)[0] == 255 else alpha


def strokes_are_dark(grey: np.ndarray, alpha: np.ndarray) -> bool:
    """Whether the visible pixels are dark strokes, drawn for a light background.

    A canvas exported with a transparent background holds black (or white) strokes over
    transparent black; flattening it naively gives all black. The strokes' own colour tells
    which background they were drawn for: the opposite of the visible pixels' mean.
    """
    # A colour, not a shape, is wanted: every few pixels tell it as well as all of them.
    step = max(1, min(grey.shape) // STATISTICS_SIDE)
    opacity = alpha[::step, ::step].ravel().astype(np.float32)
    brightness = grey[::step, ::step].ravel().astype(np.float32)
    return float(brightness @ opacity) < 127.5 * max(float(opacity.sum()), 1.0)


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


def ink_distance(grey: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """How far each pixel is from the paper, 0 to 255, whatever the polarity: dark ink on
    light paper, light ink on a dark ground, or strokes over transparency."""
    if alpha is not None:
        # Over the background the strokes were drawn for, a pixel of opacity a stands
        # a x (its distance from that background) away from it.
        ink_colour = cv2.bitwise_not(grey) if strokes_are_dark(grey, alpha) else grey
        return cv2.multiply(ink_colour, alpha, scale=1 / 255)
    background = round(border_level(grey))
    # The output type named: OpenCV takes a 4x1 image for a scalar otherwise (an error).
    if background >= 128:  # light paper
        return cv2.subtract(cv2.bitwise_not(grey), 255 - background, dtype=cv2.CV_8U)
    return cv2.subtract(grey, background, dtype=cv2.CV_8U)


@dataclass(frozen=True)
class Ink:
    """White-on-black 8-bit ink (the background exactly 0), and where it lies in the image:
    its pixel (row, column) shows the image's pixel (top + row / scale, left + column /
    scale)."""

    pixels: np.ndarray
    left: int = 0
    top: int = 0
    scale: float = 1.0


def ink_image(pixels: np.ndarray, working_side: int = WORKING_SIDE) -> Ink:
    """The ink of a decoded image whatever its polarity, at most `working_side` pixels per
    side.

    The contrast is judged at full size and stretched after reducing: reducing averages a
    thin stroke with the paper around it, and a 1-pixel line on a 4000-pixel photo would
    otherwise fall under the contrast a drawing needs.
    """
    visible, left, top = crop_to_visible(pixels)
    distance = ink_distance(*grey_and_alpha(visible))
    if cv2.minMaxLoc(distance)[1] < MIN_CONTRAST * 255:
        raise EmptyDrawingError("the drawing is empty: no strokes stand out from the background")
    reduced, scale = reduce_to_working_size(distance, working_side)
    stretched = cv2.LUT(reduced, contrast_table(max(1, round(cv2.minMaxLoc(reduced)[1]))))
    return Ink(stretched, left, top, scale)


@lru_cache(maxsize=256)
def contrast_table(strongest: int) -> np.ndarray:
    """The 256-entry table that stretches the contrast so the strongest ink is 255, and drops
    what lies under the noise floor. Built once per level: drawings share a few."""
    levels = np.arange(256, dtype=np.float32) / strongest
    ink = np.clip((levels - NOISE_FLOOR) / (1.0 - NOISE_FLOOR), 0.0, 1.0)
    table = np.round(ink * 255).astype(np.uint8)
    table.flags.writeable = False  # shared between calls
    return table


def stroke_mask(ink: np.ndarray) -> np.ndarray:
    """255 where 8-bit ink is above STROKE_LEVEL, 0 elsewhere."""
    return cv2.threshold(ink, STROKE_THRESHOLD, 255, cv2.THRESH_BINARY)[1]


def stroke_bounds(strokes: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), end-exclusive, of the non-zero pixels of a stroke mask."""
    left, top, width, height = cv2.boundingRect(strokes)
    return top, top + height, left, left + width


def ink_stroke_bounds(ink: np.ndarray) -> tuple[int, int, int, int]:
    """Stroke bounds of 8-bit ink; too few stroke pixels are no digit."""
    strokes = stroke_mask(ink)
    if cv2.countNonZero(strokes) < max(4, MIN_INK_SHARE * ink.size):
        raise EmptyDrawingError("the drawing is empty or too faint to be a digit")
    return stroke_bounds(strokes)


def resample_to_fine_scale(
    ink: np.ndarray, bounds: tuple[int, int, int, int]
) -> tuple[np.ndarray, int]:
    """The strokes' box, with a margin, at a scale where its longer side is FINE_BOX to twice
    that: large drawings are reduced by a whole factor (plain averaging of pixel blocks, a
    good anti-aliasing filter and the cheapest there is), small ones enlarged to FINE_BOX.

    Returns 8-bit ink and the longer side of the strokes' box in it. Stroke widths are
    measured and reshaped at this scale: fine enough for sub-pixel MNIST widths, small enough
    to be cheap, whatever the size of the image.
    """
    top, bottom, left, right = bounds
    digit_size = max(bottom - top, right - left)
    factor = digit_size // FINE_BOX
    # Whole pixels around the box, background where they pass the image's edges; each side a
    # multiple of the factor, which OpenCV averages in blocks far faster than otherwise.
    block = max(1, factor)
    pad = FINE_MARGIN * block + 1
    height = -(-(bottom - top + 2 * pad) // block) * block
    width = -(-(right - left + 2 * pad) // block) * block
    region_top, region_left = top - pad, left - pad
    rows = slice(max(0, region_top), region_top + height)
    inside = ink[rows, max(0, region_left) : region_left + width]
    above, before = max(0, -region_top), max(0, -region_left)
    region = cv2.copyMakeBorder(
        inside,
        above,
        height - above - inside.shape[0],
        before,
        width - before - inside.shape[1],
        cv2.BORDER_CONSTANT,
        value=0,
    )
    if factor >= 1:
        return averaged_in_blocks(region, factor), round(digit_size / factor)
    scale = FINE_BOX / digit_size
    size = (round(width * scale), round(height * scale))
    return cv2.resize(region, size, interpolation=cv2.INTER_LINEAR), FINE_BOX


def averaged_in_blocks(ink: np.ndarray, factor: int) -> np.ndarray:
    """8-bit ink reduced by a whole factor, each pixel the mean of a block of `factor` x
    `factor`: OpenCV's fastest reduction (for sides that are multiples of the factor, which
    background fills out to), and a good anti-aliasing filter.

    Averaging dims strokes thinner than a block: brought back to full strength, a hairline
    is still a stroke (made MNIST-wide later).
    """
    height, width = ink.shape
    padded = ink
    if height % factor or width % factor:
        # A copy: not for the fine-scale regions, already cut to multiples.
        padded = cv2.copyMakeBorder(
            ink, 0, -height % factor, 0, -width % factor, cv2.BORDER_CONSTANT, value=0
        )
    size = (padded.shape[1] // factor, padded.shape[0] // factor)
    reduced = cv2.resize(padded, size, interpolation=cv2.INTER_AREA)
    strongest = cv2.minMaxLoc(reduced)[1]
    if strongest < 255:
        reduced = cv2.convertScaleAbs(reduced, alpha=255 / max(strongest, 1))
    return reduced


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


def reshape_strokes(fine: np.ndarray, pixels: int) -> np.ndarray:
    """Move every stroke edge out (pixels > 0) or in by `pixels`, with a near-round pen.

    Alternating plus-shaped and square 3x3 steps grow an octagon, close to a disk, so slanted
    strokes change width as much as upright ones. Pixels past the image's edge take no part.
    """
    grow = cv2.dilate if pixels > 0 else cv2.erode
    for step in range(abs(pixels)):
        fine = grow(fine, SQUARE if step % 2 == 1 else PLUS)
    return fine


def normalize_stroke_width(fine: np.ndarray, digit_size: int) -> np.ndarray:
    """Dilate hairlines and erode blobs (at fine scale, where the strokes' box is `digit_size`
    pixels on its longer side) into MNIST's range of stroke widths."""
    width = stroke_width(fine > STROKE_THRESHOLD)
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
    """Scale the strokes' box to 20 pixels on its longer side, centred by mass in 28x28;
    floats in [0, 1]."""
    top, bottom, left, right = stroke_bounds(stroke_mask(ink))
    height, width = bottom - top, right - left
    if height == 0:
        raise EmptyDrawingError("the drawing is empty or too faint to be a digit")
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Area averaging: an anti-aliased reduction, as MNIST's own was.
    digit = cv2.resize(ink[top:bottom, left:right], size, interpolation=cv2.INTER_AREA)

    moments = cv2.moments(digit)
    offset_row = round(CENTRE - moments["m01"] / moments["m00"])
    offset_column = round(CENTRE - moments["m10"] / moments["m00"])

    field = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    # Paste with clipping: an odd shape's mass centre can push an edge past the field.
    field_rows = slice(max(0, offset_row), min(IMAGE_SIDE, offset_row + digit.shape[0]))
    field_columns = slice(max(0, offset_column), min(IMAGE_SIDE, offset_column + digit.shape[1]))
    digit_rows = slice(field_rows.start - offset_row, field_rows.stop - offset_row)
    digit_columns = slice(field_columns.start - offset_column, field_columns.stop - offset_column)
    field[field_rows, field_columns] = digit[digit_rows, digit_columns] * (1 / 255)
    return field


def digit_input(ink: np.ndarray) -> np.ndarray:
    """8-bit ink of one digit -> float32 (784,) in [0, 1], as MNIST's digits are."""
    fine = normalize_stroke_width(*resample_to_fine_scale(ink, ink_stroke_bounds(ink)))
    return fit_to_mnist_field(fine).reshape(INPUT_SIZE)


def model_input_from_image(image: Image.Image, data: bytes) -> np.ndarray:
    """An opened image (and its bytes) -> float32 (784,) in [0, 1], white digit on black."""
    return digit_input(ink_image(load_pixels(image, data)).pixels)


def preprocess(data: bytes, limits: Limits | None = None) -> np.ndarray:
    """Image bytes -> float32 (784,) in [0, 1], white digit on black as in MNIST."""
    return model_input_from_image(open_image(data, limits or Limits()), data)
