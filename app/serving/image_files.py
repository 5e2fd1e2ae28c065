"""What an image file will cost to decode, read from its structure before any decoder sees it.

A file's pixel count bounds the memory its decoding needs, but not the time: a small PNG
can hold 800,000 empty chunks that a decoder walks one by one, a small JPEG thousands of
progressive scans it decodes in full each time. Such files are refused here, in
microseconds; what remains costs about what its pixels do.
"""

import struct
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8"
# How each supported format begins (WebP: a RIFF container of type WEBP).
SIGNATURES = (PNG_SIGNATURE, JPEG_SIGNATURE, b"GIF87a", b"GIF89a", b"BM", b"RIFF")
# libpng and browsers write IDAT chunks of 8 to 64 kB: a 10 MB PNG has about 1,300 chunks.
MAX_PNG_CHUNKS = 4096
# A progressive JPEG has about 10 scans (libjpeg's default script); a baseline one, 1.
MAX_JPEG_SCANS = 64
START_OF_SCAN = b"\xff\xda"  # entropy-coded data escapes 0xFF, so this marks only scans
# Colour types of the PNGs canvases export: RGB (2) and RGBA (6).
CANVAS_COLOUR_TYPES = (2, 6)


class CostlyImageError(ValueError):
    """The file's structure would make it cost far more to decode than its pixels do."""


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    colour_type: int

    def is_canvas_export(self, max_pixels: int) -> bool:
        """8-bit RGB(A) of at most `max_pixels`: what a browser's canvas exports, decoded in
        a millisecond or two."""
        return (
            self.bit_depth == 8
            and self.colour_type in CANVAS_COLOUR_TYPES
            and self.width * self.height <= max_pixels
        )


def has_image_signature(data: bytes) -> bool:
    """Whether the bytes begin as a PNG, JPEG, GIF, BMP or WebP file does."""
    return data.startswith(SIGNATURES) and (not data.startswith(b"RIFF") or data[8:12] == b"WEBP")


def png_header(data: bytes) -> PngHeader | None:
    """The IHDR fields of PNG bytes, or None if they are not a PNG."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 29:
        return None
    width, height, bit_depth, colour_type = struct.unpack_from(">IIBB", data, 16)
    return PngHeader(width, height, bit_depth, colour_type)


def count_png_chunks(data: bytes, limit: int) -> int:
    """How many chunks the PNG holds, counting no further than `limit` + 1."""
    position, count = len(PNG_SIGNATURE), 0
    while position + 8 <= len(data) and count <= limit:
        length, kind = struct.unpack_from(">I4s", data, position)
        count += 1
        if kind == b"IEND":
            break
        position += 12 + length  # length, type, data, CRC
    return count


def check_decoding_cost(data: bytes) -> None:
    """Refuse PNGs of too many chunks and JPEGs of too many scans (CostlyImageError)."""
    if data.startswith(PNG_SIGNATURE) and count_png_chunks(data, MAX_PNG_CHUNKS) > MAX_PNG_CHUNKS:
        raise CostlyImageError(f"the PNG has more than {MAX_PNG_CHUNKS:,} chunks")
    if data.startswith(JPEG_SIGNATURE) and (scans := data.count(START_OF_SCAN)) > MAX_JPEG_SCANS:
        raise CostlyImageError(f"the JPEG has {scans:,} scans; at most {MAX_JPEG_SCANS} are read")
