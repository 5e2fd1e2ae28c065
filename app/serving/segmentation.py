"""Reading a whole number: the digits of a drawing, left to right, each made an MNIST input.

Digits are the strokes' connected pieces, merged when they share columns (a "5" whose bar
was lifted off, a "4" in two strokes, a dot over a stroke), short pieces joined to their
nearest neighbour (a bar or a flag drawn beside a stem, a break in a scanned stroke) or
dropped when far from any (specks, dust on a scan or photo), and split at their thinnest
column when a piece is much wider than the number's digits are tall (two digits that
touch). Where a piece may be two digits, or two pieces one digit, both readings go to the
network, and its answers choose. A number written on several lines is read line by line,
top to bottom. Each digit's own strokes then go through the same preprocessing as a single
drawing.
"""

import functools
import itertools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from app.serving.preprocessing import (
    FINE_BOX,
    EmptyDrawingError,
    Ink,
    Limits,
    averaged_in_blocks,
    digit_input,
    ink_image,
    load_pixels,
    open_image,
    stroke_mask,
    stroke_width,
)

# Numbers are wide: read at twice the single digit's working size, so that a digit 40
# pixels high on a 1200-pixel-wide canvas keeps more than 30.
NUMBER_WORKING_SIDE = 1024
# Each digit is reshaped at FINE_BOX to twice that many pixels high (see the preprocessing):
# a row of digits taller than this is read reduced, where they stay that high.
NUMBER_WORKING_HEIGHT = 2 * FINE_BOX
# Pieces overlapping by this share of the narrower one's width belong to one digit: digits
# side by side leave a gap, slanted ones overlap a little.
SHARED_COLUMNS = 0.25
# A piece less high than this share of the tallest may be part of a digit: it joins the
# nearest taller piece if that is nearer than this share of the tallest's height (a flag or
# bar drawn beside a stem, a break in a scanned stroke). Farther, it is a digit of its own
# if it spans this share of the tallest's height (people write some digits short and flat),
# else a speck, dropped. Short pieces near each other join first (a short "5" whose bar was
# lifted off); specks never do (the dots a break in a scanned stroke leaves). Measured on
# 3,000 seeded numbers of validation digits: 0.9957 counted right, was 0.9890.
FRAGMENT_HEIGHT = 0.5
FRAGMENT_REACH = 0.1
DIGIT_SPAN = 0.3
# A piece this many stroke widths long (of the tallest piece's strokes) is no speck, however
# short beside the tallest: a digit written small beside a "1" drawn the pad's height ("123"
# with the 1 four times as high read "1"). Dust and the dots of a broken scan are a stroke
# width or two long. On 3,000 numbers of validation digits written apart, as many counted
# right from 3 strokes up as without; at 2.5, one fewer; at 2, five fewer.
SMALL_DIGIT_STROKES = 3
# A speck less long than this share of the tallest piece is narrower than a stroke (MNIST's
# are about an eighth of a digit's height): dust on a scan or photo, not a piece of a broken
# stroke. It joins a digit only when near it across and down, not above or below it: joined,
# it would stretch the digit's box and shrink the digit in it ("2026" with twenty specks of
# dust around it read "7026"). Pieces of a broken stroke join from above or below, as far
# as the columns they share (a 6 whose rising stroke broke into five pieces).
DUST_SIDE = 0.1
# A number written on several lines: pieces at least this share of the tallest one high
# (digits, not the two loops of an 8 drawn apart), two side by side on one line and one of
# them above or below another's columns. Each line is then read on its own, top to bottom;
# before, "12" written over "34" was read column by column: "13".
LINE_DIGIT_HEIGHT = 0.75
# A piece wider than this many times a digit's height holds touching digits (a digit is
# taller than wide; "0" and a wide "4" come near 1). The height is the larger of its own and
# the other digits' median: a "0" written flat is wide for its own height, not for the
# number's. Measured on 2,000 seeded numbers of validation digits (apart and tight), all
# 27 cuts by its own height were wrong, and 1 by the number's; on 1,000 whose digits
# overlap by up to 0.12 of a width, 270 of 282 cuts were right before, 264 of 264 now.
TOUCHING_ASPECT = 1.25
# A piece between this many times a digit's height and TOUCHING_ASPECT, with a place to cut,
# may be two digits that touch (two digits side by side are 1.1 to 1.3 times as wide as
# tall), or one wide digit: it is read both ways, and the network's answers choose (see
# chosen_digits). Cut by width alone, such pieces cost 84 of 3,000 numbers of validation
# digits an extra digit.
# A piece that wide made of several strokes, merged as sharing columns, may be two digits
# leaning into each other (a slanted "1" over the end of a "2"'s base): its strokes are read
# in two groups too (see overlapping_parts). On seeded numbers of validation digits, 7 read
# right that did not, none the other way: apart 0.9467 (was 0.9463), tight 0.9320 (0.9300),
# overlapping 0.774 (0.772). Groups that span each other's middle are one digit: a "0" in
# two strokes, one over the other, read as "12" in 3 numbers.
MAYBE_TOUCHING_ASPECT = 1.0
# Two pieces side by side, together no wider than this many times a digit's height and one
# of them less high than SHORT_PART of the two together, may be one digit whose stroke came
# apart (a 9 whose loop and stem broke, the loop of a 6 beside its stem): they are read both
# ways, too, joined and apart. Two digits side by side are wider, or, like "11", both as
# high as the two. Measured on 3,000 seeded numbers of validation digits written apart, 15
# miscounted, 13 of them one digit read as two: now 8, and 0.9463 read right, was 0.9440;
# of 2,000 tight ones 0.9300, was 0.9295; of 1,000 overlapping ones 0.772 as before, and no
# number read right before read wrong now. Up to 1.0 heights wide, a tight "41928" read as
# "4928"; with SHORT_PART 0.8, a "58711" as "5871"; at 0.6, 3 of the 7 were missed again.
# One of them a fragment (less than FRAGMENT_HEIGHT of a digit high, kept as a digit for
# being too far to join), they may be as wide as TOUCHING_ASPECT: the end of a 9's stem
# broken off beyond FRAGMENT_REACH stands a stroke or two to the right of the 9, and read
# alone, it is a confident "1" ("95" read "915"). On the 3,000 apart, 2 of those read right
# now, none the other way (0.9473); tight and overlapping as before. Up to 1.5 heights, a
# "694030" read "691030".
JOINED_ASPECT = 0.95
SHORT_PART = 0.7
# A touching piece is split at its thinnest column, searched in its middle part, if that
# column crosses no more ink than one stroke (this many stroke widths): two digits that
# touch meet in a single stroke, while the middle of a wide "0" or "4" crosses two.
SPLIT_SEARCH = (0.2, 0.8)
MAX_SPLIT_STROKES = 1.5
MIN_PART_STROKES = 2.5
MIN_PART_INK = 0.2
MARGIN = 2  # pixels of the strokes' anti-aliased edge kept around each digit
NEAR = np.ones((2 * MARGIN + 1,) * 2, np.uint8)
# More pieces than this are dust on a scan or photo, dropped, or beyond it noise or
# scribbles, not digits: read as a single one (merging them pairwise would cost time on the
# event loop).
MAX_PIECES = 48
FEW_LABELS = 8


@dataclass(frozen=True)
class Piece:
    """Strokes of the ink: connected components (by label), within columns [left, right) of
    the ink when a cut divides them, and their bounding box."""

    labels: frozenset[int]
    left: int
    top: int
    width: int
    height: int
    area: int

    @property
    def centre_x(self) -> float:
        return self.left + self.width / 2

    def spans(self, x: float) -> bool:
        return self.left <= x <= self.left + self.width

    def mask(self, labelled: np.ndarray) -> np.ndarray:
        """Its pixels, within its bounding box of the labelled image."""
        box = labelled[self.top : self.top + self.height, self.left : self.left + self.width]
        return of_labels(box, self.labels)


def of_labels(labelled: np.ndarray, labels: frozenset[int]) -> np.ndarray:
    """Where the labelled image holds one of `labels`: a comparison each for a digit's few
    (np.isin took 0.7 ms), a table lookup for the many of a scribble."""
    if len(labels) <= FEW_LABELS:
        # Or-ed in place: np.logical_or.reduce of a list first copied the comparisons into
        # one array, 4 times the time of a single label's mask.
        first, *others = labels
        mask = labelled == first
        for label in others:
            mask |= labelled == label
        return mask
    beyond = max(labels) + 1  # every larger label is looked up here, and is not wanted
    wanted = np.zeros(beyond + 1, dtype=bool)
    wanted[list(labels)] = True
    return wanted[np.minimum(labelled, beyond)]


def pieces_of(labelled: np.ndarray, labels: frozenset[int], left: int, right: int) -> Piece:
    """The piece of these labels' pixels within columns [left, right)."""
    mask = of_labels(labelled[:, left:right], labels)
    x, y, width, height = cv2.boundingRect(mask.view(np.uint8))
    return Piece(labels, left + x, y, width, height, int(np.count_nonzero(mask)))


def joined(one: Piece, other: Piece) -> Piece:
    left, top = min(one.left, other.left), min(one.top, other.top)
    right = max(one.left + one.width, other.left + other.width)
    bottom = max(one.top + one.height, other.top + other.height)
    return Piece(one.labels | other.labels, left, top, right - left, bottom - top,
                 one.area + other.area)  # fmt: skip


def columns_shared(one: Piece, other: Piece) -> int:
    """Columns both pieces span (negative: the gap between them)."""
    return min(one.left + one.width, other.left + other.width) - max(one.left, other.left)


def share_columns(one: Piece, other: Piece) -> bool:
    return columns_shared(one, other) >= SHARED_COLUMNS * min(one.width, other.width)


def merged_while(pieces: list[Piece], belong: Callable[[Piece, Piece], bool]) -> list[Piece]:
    """Pieces joined while two of them belong together."""
    pieces = list(pieces)
    merged = True
    while merged:
        merged = False
        for first, second in itertools.combinations(range(len(pieces)), 2):
            if belong(pieces[first], pieces[second]):
                pieces[first] = joined(pieces[first], pieces[second])
                del pieces[second]
                merged = True
                break
    return pieces


def gap_between(one: Piece, other: Piece) -> int:
    """Columns between two pieces (0 if they share some)."""
    return max(0, -columns_shared(one, other))


def distance_between(one: Piece, other: Piece) -> int:
    """Pixels between two pieces' boxes, across or down, whichever is more (0 if they
    overlap)."""
    rows = max(0, max(one.top, other.top) - min(one.top + one.height, other.top + other.height))
    return max(gap_between(one, other), rows)


def is_speck(piece: Piece, tallest: int, stroke: Callable[[], float]) -> bool:
    """Whether the piece is too small to be a digit, beside the `tallest` piece, whose
    stroke width `stroke()` gives (measured only for pieces that short)."""
    side = max(piece.width, piece.height)
    return side < DIGIT_SPAN * tallest and side < SMALL_DIGIT_STROKES * stroke()


def is_dust(piece: Piece, tallest: int) -> bool:
    return max(piece.width, piece.height) < DUST_SIDE * tallest


def digits_of_pieces(pieces: list[Piece], labelled: np.ndarray) -> list[Piece]:
    """Pieces (of the `labelled` image) made digits: parts of one digit joined, fragments
    joined to the nearest digit when near, kept as short digits when none is near, specks
    (see is_speck, beside the tallest piece) joined to the nearest digit when near (dust:
    across and down), else dropped.

    Specks are never joined to each other: a break in a scanned stroke leaves a column of
    dots, as high as a digit when joined, but no digit.
    """
    tallest_piece = max(pieces, key=lambda piece: piece.height)
    tallest = tallest_piece.height
    stroke = functools.cache(functools.partial(piece_stroke_width, labelled, tallest_piece))
    reach = FRAGMENT_REACH * tallest
    specks: list[Piece] = []
    others: list[Piece] = []
    for piece in pieces:
        (specks if is_speck(piece, tallest, stroke) else others).append(piece)
    whole = merged_while(others, share_columns)
    digits = [piece for piece in whole if piece.height >= FRAGMENT_HEIGHT * tallest]

    def near(one: Piece, other: Piece) -> bool:
        return gap_between(one, other) <= reach

    fragments = merged_while(
        [piece for piece in whole if piece.height < FRAGMENT_HEIGHT * tallest], near
    )
    for fragment in fragments:
        nearest = min(range(len(digits)), key=lambda index: gap_between(fragment, digits[index]))
        if near(fragment, digits[nearest]):
            digits[nearest] = joined(digits[nearest], fragment)
        else:
            digits.append(fragment)
    for speck in specks:
        gap = distance_between if is_dust(speck, tallest) else gap_between
        nearest = min(range(len(digits)), key=lambda index: gap(speck, digits[index]))
        if gap(speck, digits[nearest]) <= reach:
            digits[nearest] = joined(digits[nearest], speck)
    return digits


def cut_heights(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every column c, the height of the ink in columns [0, c) and in [c, width)."""
    inked = mask.any(axis=0)
    rows = np.arange(mask.shape[0])[:, np.newaxis]
    tops = np.where(inked, np.where(mask, rows, mask.shape[0]).min(axis=0), mask.shape[0])
    bottoms = np.where(inked, np.where(mask, rows, -1).max(axis=0), -1)
    before = np.maximum.accumulate(bottoms) - np.minimum.accumulate(tops) + 1
    after = (np.maximum.accumulate(bottoms[::-1]) - np.minimum.accumulate(tops[::-1]) + 1)[::-1]
    return np.concatenate([[0], before[:-1]]), after


def cut_thickest(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every column c, the most ink of a column in [0, c) and in [c, width)."""
    before = np.maximum.accumulate(columns)
    return np.concatenate([[0], before[:-1]]), np.maximum.accumulate(columns[::-1])[::-1]


def digit_height(piece: Piece, others: list[Piece]) -> float:
    """The height a digit has here: the piece's own, or the other digits' median if more."""
    if not others:
        return piece.height
    # statistics.median: NumPy's took 20 us for a list this short, 1 us; once per digit.
    return max(piece.height, statistics.median(other.height for other in others))


def touching_parts(labelled: np.ndarray, piece: Piece) -> tuple[Piece, Piece] | None:
    """A single stroke's two parts where two digits would touch, or None if it has no such
    place (or is several strokes, merged as one digit).

    The cut is the column with the least ink, in the piece's middle, that crosses a single
    stroke and leaves a digit's height of ink on both sides: a "5" or "7" whose bar runs far
    to one side is not cut through the bar.
    """
    if len(piece.labels) > 1:
        return None
    mask = piece.mask(labelled)
    columns = mask.sum(axis=0)
    before, after = cut_heights(mask)
    thickest_before, thickest_after = cut_thickest(columns)
    ink_before = np.cumsum(columns) - columns
    tall_enough = FRAGMENT_HEIGHT * piece.height
    width = stroke_width(mask)
    cuttable = (
        (columns <= MAX_SPLIT_STROKES * width)
        & (before >= tall_enough)
        & (after >= tall_enough)
        & (thickest_before >= MIN_PART_STROKES * width)
        & (thickest_after >= MIN_PART_STROKES * width)
        & (ink_before >= MIN_PART_INK * piece.area)
        & (piece.area - ink_before >= MIN_PART_INK * piece.area)
    )
    start, stop = (round(share * piece.width) for share in SPLIT_SEARCH)
    candidates = np.flatnonzero(cuttable[start:stop]) + start
    if not len(candidates):
        return None
    # Both sides hold ink: the cut leaves a digit's height of it on each.
    cut = piece.left + int(candidates[np.argmin(columns[candidates])])
    right = piece.left + piece.width
    return (
        pieces_of(labelled, piece.labels, piece.left, cut),
        pieces_of(labelled, piece.labels, cut, right),
    )


def split_touching(labelled: np.ndarray, piece: Piece, height: float) -> list[Piece]:
    """A piece much wider than a digit's `height` split where two digits touch, again as long
    as a part stays too wide; one with no such place is left whole."""
    parts = touching_parts(labelled, piece) if piece.width > TOUCHING_ASPECT * height else None
    if parts is None:
        return [piece]
    return [digit for part in parts for digit in split_touching(labelled, part, height)]


def maybe_touching(labelled: np.ndarray, piece: Piece, height: float) -> tuple[Piece, Piece] | None:
    """The two parts of a piece that may be two digits touching, or one wide digit (see
    MAYBE_TOUCHING_ASPECT); None if it is not that wide, or has no place to cut."""
    if not MAYBE_TOUCHING_ASPECT * height < piece.width <= TOUCHING_ASPECT * height:
        return None
    return touching_parts(labelled, piece)


def overlapping_parts(
    labelled: np.ndarray, piece: Piece, height: float
) -> tuple[Piece, Piece] | None:
    """A piece of several strokes that may be two digits leaning into each other's columns
    (see MAYBE_TOUCHING_ASPECT): its strokes in two groups, left and right, each at least
    FRAGMENT_HEIGHT of a digit high, sharing the fewest columns; None if it is not that wide
    or has no such groups (a "5" whose bar was lifted off).

    Past a digit's few strokes (FEW_LABELS), a scribble or noise: never grouped, each stroke
    would take a pass over the piece (a wide drawing of 15,000 dots read for minutes)."""
    if not 2 <= len(piece.labels) <= FEW_LABELS or piece.width <= MAYBE_TOUCHING_ASPECT * height:
        return None
    end = piece.left + piece.width
    strokes = sorted(
        (pieces_of(labelled, frozenset([label]), piece.left, end) for label in piece.labels),
        key=lambda stroke: stroke.centre_x,
    )
    groups = [
        (functools.reduce(joined, strokes[:cut]), functools.reduce(joined, strokes[cut:]))
        for cut in range(1, len(strokes))
    ]
    tall_enough = FRAGMENT_HEIGHT * height
    apart = [
        (left, right)
        for left, right in groups
        if min(left.height, right.height) >= tall_enough
        and not (left.spans(right.centre_x) or right.spans(left.centre_x))
    ]
    if not apart:
        return None
    return min(apart, key=lambda pair: columns_shared(*pair))


def maybe_one_digit(one: Piece, following: Piece, height: float) -> bool:
    """Whether a piece and the one following it may be a single digit whose stroke came
    apart (see JOINED_ASPECT), in a line of digits `height` high."""
    both = joined(one, following)
    shorter = min(one.height, following.height)
    widest = TOUCHING_ASPECT if shorter < FRAGMENT_HEIGHT * height else JOINED_ASPECT
    return (
        rows_overlap(one, following)
        and both.width <= widest * height
        and shorter < SHORT_PART * both.height
    )


def piece_stroke_width(labelled: np.ndarray, piece: Piece) -> float:
    """The width of the piece's strokes, measured in a margin: the edges along its box are
    edges of its strokes too."""
    mask = piece.mask(labelled).view(np.uint8)
    return stroke_width(cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0))


def labelled_pieces(strokes: np.ndarray) -> tuple[int, np.ndarray]:
    """The strokes' connected pieces: their count (with the background) and the image of
    their labels, in 16 bits: every digit's mask compares half the memory of 32 bits (the
    bench's 4 digits found and masked in 0.91x the time). Past 65,535 pieces, noise that
    OpenCV refuses to label in 16 bits, in 32.

    Without OpenCV's statistics, which took four times as long as the labels themselves.
    """
    try:
        return cv2.connectedComponents(strokes, connectivity=8, ltype=cv2.CV_16U)
    except cv2.error:
        return cv2.connectedComponents(strokes, connectivity=8)


def rows_overlap(one: Piece, other: Piece) -> bool:
    return min(one.top + one.height, other.top + other.height) > max(one.top, other.top)


def lines_of(pieces: list[Piece]) -> list[list[Piece]]:
    """The pieces of each line of a number written on several, top to bottom; all of them as
    one line unless digits stand on top of one another.

    A line is the rows of its digit-high pieces; every other piece (a bar, a speck) goes to
    the line nearest to its middle.
    """
    tallest = max(piece.height for piece in pieces)
    digits = [piece for piece in pieces if piece.height >= LINE_DIGIT_HEIGHT * tallest]
    side_by_side = any(
        rows_overlap(one, other) and not share_columns(one, other)
        for one, other in itertools.combinations(digits, 2)
    )
    stacked = any(
        share_columns(one, other) and not rows_overlap(one, other)
        for one, other in itertools.combinations(digits, 2)
    )
    if not (side_by_side and stacked):
        return [pieces]
    bands: list[list[int]] = []  # [top, bottom) of each line, top to bottom
    for digit in sorted(digits, key=lambda piece: piece.top):
        if bands and digit.top < bands[-1][1]:
            bands[-1][1] = max(bands[-1][1], digit.top + digit.height)
        else:
            bands.append([digit.top, digit.top + digit.height])

    def rows_from(piece: Piece, band: list[int]) -> float:
        middle = piece.top + piece.height / 2
        return max(band[0] - middle, middle - band[1], 0)

    lines: list[list[Piece]] = [[] for _ in bands]
    for piece in pieces:
        lines[min(range(len(bands)), key=lambda line: rows_from(piece, bands[line]))].append(piece)
    return lines


def pieces_beyond_dust(strokes: np.ndarray) -> tuple[int, np.ndarray, list[Piece] | None]:
    """Strokes in too many pieces to join pairwise: their count (with the background), their
    labelled image, and the pieces that are no dust, which is dropped; None if even those are
    too many (a scribble, noise).

    Labelled again, with OpenCV's statistics: past a few pieces, cheaper than a mask each.
    """
    count, labelled, stats, _ = cv2.connectedComponentsWithStats(strokes, connectivity=8)
    tallest = stats[1:, cv2.CC_STAT_HEIGHT].max()
    longest_sides = stats[:, [cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT]].max(axis=1)
    kept = np.flatnonzero(longest_sides[1:] >= DUST_SIDE * tallest) + 1
    if len(kept) > MAX_PIECES:
        return count, labelled, None
    # The statistics' columns are a Piece's fields: left, top, width, height, area.
    return (
        count,
        labelled,
        [Piece(frozenset([int(label)]), *map(int, stats[label])) for label in kept],
    )


def find_digits(ink: np.ndarray) -> tuple[np.ndarray, list[Piece]]:
    """The digits drawn in 8-bit ink, left to right (line by line, top to bottom, when the
    number is written on several), over the labelled image their pieces refer to;
    EmptyDrawingError if there is none."""
    strokes = stroke_mask(ink)
    count, labelled = labelled_pieces(strokes)
    if count == 1:
        raise EmptyDrawingError("the drawing is empty or too faint to be a digit")
    if count - 1 <= MAX_PIECES:
        pieces = [
            pieces_of(labelled, frozenset([label]), 0, ink.shape[1]) for label in range(1, count)
        ]
    else:
        count, labelled, pieces = pieces_beyond_dust(strokes)
        if pieces is None:
            everything = frozenset(range(1, count))
            return labelled, [pieces_of(labelled, everything, 0, ink.shape[1])]
    digits = []
    for line in lines_of(pieces):
        whole = digits_of_pieces(line, labelled)
        parts = [
            part
            for index, piece in enumerate(whole)
            for part in split_touching(
                labelled, piece, digit_height(piece, whole[:index] + whole[index + 1 :])
            )
        ]
        digits += sorted(parts, key=lambda digit: digit.left)
    return labelled, digits


def located_digits(ink: Ink) -> tuple[Ink, np.ndarray, list[Piece]]:
    """The digits of a number's ink, and the ink and labelled image they were found in.

    A row taller than NUMBER_WORKING_HEIGHT is reduced by the whole factor that brings it
    under, if its digits stay FINE_BOX high there: every step after has a fraction of the
    pixels to work on (the bench's 4-digit number, 204 pixels high: read in 0.8x the time).
    Digits much shorter than their row (a baseline that wanders) are found at full size.
    """
    factor = -(-ink.pixels.shape[0] // NUMBER_WORKING_HEIGHT)
    if factor > 1:
        reduced = Ink(averaged_in_blocks(ink.pixels, factor), ink.left, ink.top, ink.scale / factor)
        labelled, digits = find_digits(reduced.pixels)
        if statistics.median(digit.height for digit in digits) >= FINE_BOX:
            return reduced, labelled, digits
    return ink, *find_digits(ink.pixels)


def digit_ink(ink: np.ndarray, labelled: np.ndarray, digit: Piece) -> np.ndarray:
    """The digit's own strokes with their soft edges, in its box: not its neighbours'."""
    margin = np.zeros((digit.height + 2 * MARGIN, digit.width + 2 * MARGIN), np.uint8)
    margin[MARGIN:-MARGIN, MARGIN:-MARGIN] = digit.mask(labelled)
    near = cv2.dilate(margin, NEAR)  # 1 within MARGIN of its strokes, else 0
    top, left = digit.top - MARGIN, digit.left - MARGIN
    region = cv2.copyMakeBorder(
        ink[max(0, top) : top + near.shape[0], max(0, left) : left + near.shape[1]],
        max(0, -top),
        max(0, top + near.shape[0] - ink.shape[0]),
        max(0, -left),
        max(0, left + near.shape[1] - ink.shape[1]),
        cv2.BORDER_CONSTANT,
        value=0,
    )
    # Times 1 or 0, in one OpenCV call: np.where and its copy to 8 bits took 3 times as long.
    return cv2.multiply(region, near)


@dataclass(frozen=True)
class ReadDigit:
    model_input: np.ndarray  # (784,) float32
    box: tuple[int, int, int, int]  # x, y, width, height in the uploaded image's pixels
    # A digit that may be two touching (see MAYBE_TOUCHING_ASPECT): those two, read too.
    split: tuple["ReadDigit", "ReadDigit"] | None = None
    # A digit that may be one with the next (see JOINED_ASPECT): the two joined, read too.
    with_next: "ReadDigit | None" = None


def box_in_image(ink: Ink, digit: Piece) -> tuple[int, int, int, int]:
    return (
        round(ink.left + digit.left / ink.scale),
        round(ink.top + digit.top / ink.scale),
        round(digit.width / ink.scale),
        round(digit.height / ink.scale),
    )


def read_digits(data: bytes, limits: Limits) -> list[ReadDigit]:
    """Image bytes -> each digit's model input and box, left to right (line by line); a digit
    that may be two touching is also read as those two, and one that may be a single digit
    with the next as the two joined, for `chosen_digits` to choose."""
    image = open_image(data, limits)
    ink, labelled, digits = located_digits(ink_image(load_pixels(image, data), NUMBER_WORKING_SIDE))

    def read(
        digit: Piece, split: tuple[Piece, Piece] | None = None, with_next: Piece | None = None
    ) -> ReadDigit:
        """The digit's model input and box, and those of its other readings."""
        return ReadDigit(
            digit_input(digit_ink(ink.pixels, labelled, digit)),
            box_in_image(ink, digit),
            None if split is None else (read(split[0]), read(split[1])),
            None if with_next is None else read(joined(digit, with_next)),
        )

    found = []
    for index, digit in enumerate(digits):
        height = digit_height(digit, digits[:index] + digits[index + 1 :])
        joinable = index + 1 < len(digits) and maybe_one_digit(digit, digits[index + 1], height)
        found.append(
            read(
                digit,
                maybe_touching(labelled, digit, height)
                or overlapping_parts(labelled, digit, height),
                digits[index + 1] if joinable else None,
            )
        )
    return found


def likelier(answers: list[np.ndarray], than: list[np.ndarray]) -> bool:
    """Whether one reading's answers are likelier than another's: their top probabilities
    multiplied."""
    return math.prod(map(np.max, answers)) > math.prod(map(np.max, than))


def chosen_digits(
    found: list[ReadDigit], predict: Callable[[np.ndarray], np.ndarray]
) -> list[tuple[ReadDigit, np.ndarray]]:
    """The digits of a number with their probabilities (`predict`: model inputs to
    probabilities, called once), choosing, left to right, between the readings of a digit
    that may be one with the next (see JOINED_ASPECT) and of one that may be two touching
    (see `likelier`).

    Measured on 60 numbers of 3-6 digits drawn in strokes as the page draws them, with their
    neighbours touching, 25 read right against 14 when only a piece wider than
    TOUCHING_ASPECT is cut; on the evaluation's overlapping numbers of test digits, 0.802
    against 0.758; of those written apart, 1 of 1,000 lost (a wide, flat 5 read as "65").
    """
    readings = list(found)

    def answered(reading: ReadDigit) -> int:
        """Queue the reading for the network: the index of its answer."""
        readings.append(reading)
        return len(readings) - 1

    splits = [None if digit.split is None else tuple(map(answered, digit.split)) for digit in found]
    joins = [None if digit.with_next is None else answered(digit.with_next) for digit in found]
    probabilities = predict(np.stack([reading.model_input for reading in readings]))
    chosen: list[tuple[ReadDigit, np.ndarray]] = []
    index = 0
    while index < len(found):
        whole, split, together = probabilities[index], splits[index], joins[index]
        if together is not None and likelier(
            [probabilities[together]], [whole, probabilities[index + 1]]
        ):
            taken, index = [together], index + 2
        elif split is not None and likelier([probabilities[part] for part in split], [whole]):
            taken, index = list(split), index + 1
        else:
            taken, index = [index], index + 1
        chosen += [(readings[answer], probabilities[answer]) for answer in taken]
    return chosen


def preprocess_counting_digits(data: bytes, limits: Limits) -> tuple[np.ndarray, int]:
    """Image bytes -> the model input of the whole drawing as one digit, and how many
    digits the drawing seems to hold (a single digit's answer should say when it is not)."""
    image = open_image(data, limits)
    ink = ink_image(load_pixels(image, data)).pixels
    return digit_input(ink), len(find_digits(ink)[1])
