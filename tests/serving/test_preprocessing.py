"""Preprocessing: any reasonable image of a digit becomes the MNIST-like input the model knows."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from app.serving.model_file import load_classifier
from app.serving.preprocessing import (
    EmptyDrawingError,
    ImageTooLargeError,
    Limits,
    UnsupportedImageError,
    crop_to_visible,
    preprocess,
    stroke_width,
)
from app.training.data import MnistData
from app.training.drawings import DrawingStyle, render_drawing
from tests.conftest import encode


@pytest.fixture(scope="module")
def digit(mnist: MnistData) -> np.ndarray:
    """A real MNIST test digit (a 7)."""
    return mnist.x_test[0]


@pytest.fixture(scope="module")
def canvas(digit: np.ndarray) -> Image.Image:
    """The digit as a 280x280 canvas drawing, black ink on white, greyscale."""
    return Image.open(io.BytesIO(render_drawing(digit, DrawingStyle()))).convert("L")


@pytest.fixture(scope="module")
def reference(canvas: Image.Image) -> np.ndarray:
    return preprocess(encode(canvas))


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, columns = np.indices(image.shape)
    return float((rows * image).sum() / image.sum()), float((columns * image).sum() / image.sum())


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixels: what a bomb looks like up front."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_output_is_784_floats_in_unit_range(reference: np.ndarray) -> None:
    assert reference.shape == (784,)
    assert reference.dtype == np.float32
    assert reference.min() == 0.0
    assert 0.9 < reference.max() <= 1.0


def test_digit_is_fitted_to_mnist_box_and_centred_by_mass(reference: np.ndarray) -> None:
    image = reference.reshape(28, 28)
    strokes = image > 0.5
    rows, columns = np.flatnonzero(strokes.any(axis=1)), np.flatnonzero(strokes.any(axis=0))
    longer_side = max(rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1)
    assert 19 <= longer_side <= 20
    row, column = centre_of_mass(image)
    assert abs(row - 14) <= 0.5
    assert abs(column - 14) <= 0.5


def test_raw_mnist_digit_comes_back_nearly_unchanged(mnist: MnistData) -> None:
    differences = [
        np.abs(preprocess(encode(Image.fromarray(image))) - image.ravel() / 255.0).mean()
        for image in mnist.x_test[:200]
    ]
    assert np.mean(differences) < 0.04


def test_transparent_canvas_with_black_strokes_is_not_all_black(
    canvas: Image.Image, reference: np.ndarray
) -> None:
    # What canvas.toBlob() gives for black strokes on a cleared canvas: black, alpha = ink.
    ink = Image.eval(canvas, lambda value: 255 - value)
    transparent = Image.merge("LA", (Image.new("L", canvas.size, 0), ink)).convert("RGBA")
    assert np.asarray(transparent.convert("L")).max() == 0  # naive flattening: all black
    np.testing.assert_allclose(preprocess(encode(transparent)), reference, atol=1e-6)


def test_white_strokes_on_transparent_background(
    canvas: Image.Image, reference: np.ndarray
) -> None:
    ink = Image.eval(canvas, lambda value: 255 - value)
    white_strokes = Image.merge("LA", (Image.new("L", canvas.size, 255), ink))
    np.testing.assert_allclose(preprocess(encode(white_strokes)), reference, atol=1e-6)


def test_polarity_is_detected(canvas: Image.Image, reference: np.ndarray) -> None:
    white_on_black = Image.eval(canvas, lambda value: 255 - value)
    np.testing.assert_allclose(preprocess(encode(white_on_black)), reference, atol=1e-6)


def test_grey_paper_and_grey_ink_are_stretched(canvas: Image.Image, reference: np.ndarray):
    # A photo: light grey paper (200), dark grey ink (60).
    photo = Image.eval(canvas, lambda value: 60 + value * 140 // 255)
    assert np.abs(preprocess(encode(photo)) - reference).mean() < 0.01


def formats_and_modes(canvas: Image.Image) -> dict[str, bytes]:
    ink = Image.eval(canvas, lambda value: 255 - value)
    palette = canvas.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    frames = [canvas.convert("P"), Image.new("P", canvas.size, 0)]
    return {
        "PNG RGB": encode(canvas.convert("RGB")),
        "PNG RGBA opaque": encode(canvas.convert("RGBA")),
        "PNG LA transparent": encode(Image.merge("LA", (Image.new("L", canvas.size, 0), ink))),
        "PNG palette with transparency": encode(palette, transparency=palette.getpixel((0, 0))),
        "PNG 16-bit": encode(Image.fromarray(np.asarray(canvas).astype(np.uint16) * 257)),
        "PNG 1-bit": encode(canvas.convert("1")),
        "JPEG": encode(canvas.convert("RGB"), "JPEG", quality=75),
        "JPEG CMYK": encode(canvas.convert("CMYK"), "JPEG", quality=90),
        "WebP lossless": encode(canvas.convert("RGB"), "WEBP", lossless=True),
        "WebP lossy": encode(canvas.convert("RGB"), "WEBP", quality=70),
        "GIF": encode(canvas, "GIF"),
        "GIF animated": encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "BMP": encode(canvas, "BMP"),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "PNG RGB",
        "PNG RGBA opaque",
        "PNG LA transparent",
        "PNG palette with transparency",
        "PNG 16-bit",
        "PNG 1-bit",
        "JPEG",
        "JPEG CMYK",
        "WebP lossless",
        "WebP lossy",
        "GIF",
        "GIF animated",
        "BMP",
    ],
)
def test_every_format_and_mode_gives_the_same_input(
    kind: str, canvas: Image.Image, reference: np.ndarray
) -> None:
    result = preprocess(formats_and_modes(canvas)[kind])
    # Dithering (1-bit) and lossy compression move pixels a little; nothing more.
    assert np.abs(result - reference).mean() < 0.01
    assert np.abs(result - reference).max() < 0.15


def test_size_and_position_on_the_canvas_do_not_matter(
    digit: np.ndarray, reference: np.ndarray
) -> None:
    small_in_a_corner = DrawingStyle(canvas_size=(640, 480), digit_height=100, centre=(0.2, 0.8))
    large = DrawingStyle(canvas_size=(400, 400), digit_height=340)
    for style in (small_in_a_corner, large):
        assert np.abs(preprocess(render_drawing(digit, style)) - reference).mean() < 0.06


def mnist_stroke_width(model_input: np.ndarray) -> float:
    """Stroke width of a 28x28 input, measured at 4x with the preprocessing's own measure."""
    enlarged = Image.fromarray(model_input.reshape(28, 28), mode="F").resize(
        (112, 112), Image.Resampling.BILINEAR
    )
    return stroke_width(np.asarray(enlarged) > 0.5) / 4


@pytest.mark.parametrize("pen_width", [0.5, 0.8, 5.0, 6.0])
def test_hairlines_and_markers_get_mnist_stroke_widths(digit: np.ndarray, pen_width: float):
    # Pen widths in MNIST pixels on a 280-pixel canvas where the digit is 200 pixels tall.
    drawing = render_drawing(digit, DrawingStyle(pen_width=pen_width * 10))
    assert 1.3 <= mnist_stroke_width(preprocess(drawing)) <= 4.2


def test_noise_and_faint_specks_are_ignored(canvas: Image.Image, reference: np.ndarray):
    rng = np.random.default_rng(0)
    pixels = np.asarray(canvas, dtype=np.float64) - np.abs(rng.normal(0, 6, (280, 280)))
    pixels[10:14, 10:14] = 215  # a faint smudge in a corner, well away from the digit
    noisy = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    result = preprocess(encode(noisy))
    assert np.abs(result - reference).mean() < 0.02


def test_prediction_survives_the_pipeline(
    reference: np.ndarray, committed_model_path: Path
) -> None:
    probabilities = load_classifier(committed_model_path).predict(reference[np.newaxis])
    assert probabilities.argmax() == 7


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (280, 280), 255),
        Image.new("RGBA", (280, 280), (0, 0, 0, 0)),
        Image.new("RGB", (280, 280), (90, 140, 200)),
        Image.new("L", (1, 1), 0),
    ],
    ids=["white", "transparent", "flat colour", "1x1"],
)
def test_blank_images_are_not_digits(image: Image.Image) -> None:
    with pytest.raises(EmptyDrawingError):
        preprocess(encode(image))


def test_the_crop_of_a_transparent_image_is_its_visible_pixels_and_one_more() -> None:
    # Colour under full transparency is not seen (canvases may export white there); the
    # faintest opacity is.
    pixels = np.zeros((50, 60, 4), np.uint8)
    pixels[..., :3] = 255
    pixels[10, 20, 3] = 1
    pixels[30, 45] = (0, 0, 0, 255)
    visible, left, top = crop_to_visible(pixels)
    assert (left, top) == (19, 9)
    np.testing.assert_array_equal(visible, pixels[9:32, 19:47])


def test_blank_canvas_as_jpeg_is_not_a_digit() -> None:
    with pytest.raises(EmptyDrawingError):
        preprocess(encode(Image.new("RGB", (280, 280), "white"), "JPEG", quality=50))


def test_a_speck_is_not_a_digit() -> None:
    image = Image.new("L", (280, 280), 255)
    image.paste(0, (140, 140, 142, 142))
    with pytest.raises(EmptyDrawingError, match="empty or too faint"):
        preprocess(encode(image))


def test_huge_dimensions_are_refused_before_decoding() -> None:
    # The headers claim huge sizes; there are no pixel data to decode at all.
    with pytest.raises(ImageTooLargeError, match="too large: 5000x5000 pixels"):
        preprocess(png_header_only(5000, 5000))
    with pytest.raises(ImageTooLargeError, match="too large"):
        preprocess(png_header_only(20000, 20000))


def test_decompression_bomb_is_refused() -> None:
    bomb = encode(Image.new("L", (6000, 6000), 255), optimize=True)
    assert len(bomb) < 100_000  # 36 megapixels in a few kilobytes
    with pytest.raises(ImageTooLargeError):
        preprocess(bomb)


def test_limits_are_configurable(canvas: Image.Image) -> None:
    with pytest.raises(ImageTooLargeError, match="280x280"):
        preprocess(encode(canvas), Limits(max_pixels=10_000))


def test_text_chunk_bomb_is_refused(canvas: Image.Image) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * 20_000_000, zip=True)
    with pytest.raises(UnsupportedImageError):
        preprocess(encode(canvas, pnginfo=info))


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a", bytes(range(256)) * 4, b"<svg xmlns='http://www.w3.org/2000/svg'/>"],
    ids=["empty", "gif signature only", "random bytes", "svg"],
)
def test_non_images_are_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedImageError):
        preprocess(data)


def test_truncated_png_is_unsupported(canvas: Image.Image) -> None:
    data = encode(canvas)
    with pytest.raises(UnsupportedImageError, match="corrupt or truncated"):
        preprocess(data[: len(data) // 2])


def test_tiff_is_not_accepted(canvas: Image.Image) -> None:
    with pytest.raises(UnsupportedImageError):
        preprocess(encode(canvas, "TIFF"))
