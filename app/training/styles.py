"""Handwriting styles MNIST's writers rarely used, made from MNIST's own digits.

MNIST's 1s are mostly bare sticks, its 7s have no crossbar, its 4s are open at the top.
People drawing on a canvas often write a 1 with a flag and a base, a 7 with a crossbar, a
closed 4, a 9 with a straight or hooked stem, a 2 with a loop, a slashed 0. Each style here
adds (or redraws) a stroke or two on a real 28x28 digit, where that digit's own strokes say
they belong and as wide as they are, so the label stays right. Strokes are drawn
anti-aliased at four times MNIST's resolution in a field with room around it, and the result is
brought back to MNIST's form (20-pixel box, centre of mass at 14, 14) by the serving
pipeline's own function.

A style leaves alone a digit it does not suit: a 1 that already has a flag, a 4 already
closed, a 9 whose loop is not closed. One style adds nothing: open 4s, measured beside the
closed ones. Two are pens rather than strokes, for the evaluation: any digit drawn with a
marker, or with a thin pen. For training, a share of the styled digits is redrawn with a
round pen from hairline to marker, as the canvas renderer draws, and brought into the form
the serving pipeline gives a drawing (`drawn_with_pen`): a pen's strokes meet in blobs and
forks that MNIST's scans do not have.
"""

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import cv2
import numpy as np

from app.mnist import IMAGE_SIDE
from app.serving.preprocessing import (
    contrast_table,
    fit_to_mnist_field,
    normalize_stroke_width,
    resample_to_fine_scale,
    stroke_bounds,
    stroke_mask,
    stroke_width,
)
from app.training.drawings import PEN_WIDTHS, pen_strokes
from app.training.processes import mapped

FINE = 4  # strokes are added at this many times MNIST's resolution
MARGIN = 6  # MNIST pixels of room around the 28x28 field, for strokes reaching past it
SHIFT = 4  # OpenCV's fractional bits for sub-pixel drawing coordinates
STROKE_LEVEL = 127  # 8-bit ink above this is stroke, as in the serving pipeline

Point = tuple[float, float]  # (row, column) in MNIST pixels of the 28x28 field


@dataclass
class Sketch:
    """A digit at fine scale, with what is known of its strokes, ready for added strokes."""

    digit: np.ndarray  # the 28x28 uint8 original
    ink: np.ndarray = field(init=False)  # uint8, (28 + 2 * MARGIN) * FINE per side
    mask: np.ndarray = field(init=False)  # 28x28 booleans: stroke pixels of the original
    width: float = field(init=False)  # stroke width in MNIST pixels

    def __post_init__(self) -> None:
        side = IMAGE_SIDE * FINE
        enlarged = cv2.resize(self.digit, (side, side), interpolation=cv2.INTER_LINEAR)
        self.ink = cv2.copyMakeBorder(enlarged, *(MARGIN * FINE,) * 4, cv2.BORDER_CONSTANT)
        self.mask = self.digit > STROKE_LEVEL
        # The width of the stroke pixels, scaled to the ink they hold: a thin stroke's soft
        # edges put less ink per length than its thresholded width says.
        strokes = enlarged > STROKE_LEVEL
        ink_share = enlarged.sum() / 255 / max(1, np.count_nonzero(strokes))
        self.width = stroke_width(strokes) * ink_share / FINE

    @property
    def points(self) -> np.ndarray:
        """(n, 2) rows and columns of the stroke pixels."""
        return np.argwhere(self.mask).astype(np.float64)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """top, bottom, left, right of the stroke pixels, inclusive."""
        rows, columns = np.nonzero(self.mask)
        return rows.min(), rows.max(), columns.min(), columns.max()

    @property
    def height(self) -> int:
        top, bottom, _, _ = self.box
        return bottom - top + 1

    def pen(self, rng: np.random.Generator) -> int:
        """A pen as wide as the digit's own strokes, give or take, in fine pixels (OpenCV's
        anti-aliased lines leave about one pixel more ink than their thickness)."""
        return max(1, round(self.width * FINE * rng.uniform(0.85, 1.15) - 1))

    def polyline(self, points: list[Point] | np.ndarray, pen: int, closed: bool = False) -> None:
        """Draw a stroke through `points` (MNIST pixels) with a round pen `pen` fine pixels wide."""
        fine = np.round((np.asarray(points) + MARGIN + 0.5) * FINE - 0.5) * (1 << SHIFT)
        xy = fine[:, ::-1].astype(np.int32)  # OpenCV takes (x, y)
        cv2.polylines(self.ink, [xy], closed, 255, pen, cv2.LINE_AA, SHIFT)
        # OpenCV's thick polylines end square; a pen ends round.
        for x, y in xy[[0, -1]] if not closed else ():
            cv2.circle(
                self.ink, (int(x), int(y)), pen * (1 << SHIFT) // 2, 255, -1, cv2.LINE_AA, SHIFT
            )

    def erase_below(self, row: float) -> None:
        """Remove every stroke below `row` (MNIST pixels)."""
        self.ink[round((row + MARGIN + 0.5) * FINE) :] = 0

    def strokes(self) -> np.ndarray:
        """Booleans at fine scale: where the sketch's ink is stroke."""
        return self.ink > STROKE_LEVEL

    def finish(self) -> np.ndarray:
        """The sketch in MNIST's form: 28x28 uint8, 20-pixel box, centre of mass at 14, 14."""
        return np.round(fit_to_mnist_field(self.ink) * 255).astype(np.uint8)


def endpoint(points: np.ndarray, along: np.ndarray, at_max: bool, reach: float) -> Point:
    """The centre of the stroke pixels within `reach` of one extreme of their projection."""
    near = along >= along.max() - reach if at_max else along <= along.min() + reach
    return tuple(points[near].mean(axis=0))


def principal_axis(points: np.ndarray) -> np.ndarray:
    """The unit (row, column) direction along which points spread most, pointing down."""
    _, vectors = np.linalg.eigh(np.cov((points - points.mean(axis=0)).T))
    return vectors[:, -1] * (1.0 if vectors[0, -1] >= 0 else -1.0)


def bezier(start: Point, control: Point, end: Point, steps: int = 24) -> np.ndarray:
    """Points of the quadratic Bezier curve from `start` to `end`, pulled towards `control`."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    p0, p1, p2 = (np.asarray(point) for point in (start, control, end))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def holes(mask: np.ndarray) -> np.ndarray:
    """Background pixels enclosed by strokes (the inside of loops)."""
    outside = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    cv2.floodFill(outside, None, (0, 0), 2)
    return outside[1:-1, 1:-1] == 1


def ink_runs(row: np.ndarray) -> list[np.ndarray]:
    """The column indexes of each run of stroke pixels in one row of the mask."""
    columns = np.flatnonzero(row)
    return np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1) if columns.size else []


def one_with_flag(sketch: Sketch, rng: np.random.Generator, *, long_flag: bool, base: bool) -> bool:
    """A bare-stick 1 with a flag from its top, down to the left, and maybe a base serif.

    A short flag is a tick, 30-45 degrees off the stem; a long one an upstroke 28-40 degrees
    off it, reaching a third to a half of the way down, as continental Europe writes it. Both
    stay steeper than a 7's bar, even once the drawing leans, and open enough not to merge
    with the stem at MNIST's resolution.
    """
    points = sketch.points
    centred = points - points.mean(axis=0)
    down = principal_axis(points)  # the stem's
    left = np.array([-down[1], down[0]])
    left = left if left[1] < 0 else -left  # perpendicular to the stem, pointing left
    along, across = centred @ down, centred @ left
    # A stick only: a 1 that already has a flag or a base is wider than its stroke.
    if np.ptp(across) + 1 > sketch.width + 2.0:
        return False
    # Upright only: a long flag on a 1 leaning right draws a 7.
    if abs(np.degrees(np.arctan2(down[1], down[0]))) > 15:
        return False
    length = np.ptp(along) + 1
    reach = sketch.width / 2
    top = np.asarray(endpoint(points, along, at_max=False, reach=reach))
    bottom = np.asarray(endpoint(points, along, at_max=True, reach=reach))

    pen = sketch.pen(rng)
    if long_flag:
        angle, flag_length = rng.uniform(28, 40), length * rng.uniform(0.4, 0.55)
    else:
        angle, flag_length = rng.uniform(30, 45), length * rng.uniform(0.22, 0.32)
    angle = np.deg2rad(angle)
    flag_end = top + flag_length * (np.cos(angle) * down + np.sin(angle) * left)
    sketch.polyline([tuple(top), tuple(flag_end)], pen)
    if base:
        half = length * rng.uniform(0.18, 0.3)
        tilt = np.deg2rad(rng.uniform(-5, 5))
        offset = half * np.array([np.sin(tilt), np.cos(tilt)])
        sketch.polyline([tuple(bottom - offset), tuple(bottom + offset)], pen)
    return True


def seven_with_crossbar(sketch: Sketch, rng: np.random.Generator) -> bool:
    """A 7 with a short bar across the middle of its stem."""
    top, _, _, _ = sketch.box
    # One thin stem all along the middle; anything wider already crosses it.
    middle = [
        ink_runs(sketch.mask[row])
        for row in range(top + round(0.3 * sketch.height), top + round(0.75 * sketch.height))
    ]
    if any(len(runs) != 1 or runs[0].size > 2 * sketch.width + 1 for runs in middle):
        return False
    row = round(top + sketch.height * rng.uniform(0.45, 0.6))
    runs = ink_runs(sketch.mask[row])
    column = runs[0].mean()
    length = sketch.height * rng.uniform(0.35, 0.5)
    left_share = rng.uniform(0.4, 0.6)
    slope = np.tan(np.deg2rad(rng.uniform(-6, 6)))
    start = (row + slope * left_share * length, column - left_share * length)
    end = (row - slope * (1 - left_share) * length, column + (1 - left_share) * length)
    sketch.polyline([start, end], sketch.pen(rng))
    return True


def four_bar_and_stem(sketch: Sketch) -> tuple[int, float] | None:
    """The row of a 4's bar and the column where its stem leaves the bar, downwards."""
    top, bottom, _, _ = sketch.box
    rows = np.arange(top + round(0.35 * sketch.height), top + round(0.85 * sketch.height))
    bar = int(rows[np.argmax(sketch.mask[rows].sum(axis=1))])
    below = round(bar + sketch.width) + 1
    runs = ink_runs(sketch.mask[below]) if below < bottom - 2 else []
    if not runs:  # no stem below the bar
        return None
    return bar, float(runs[-1].mean())


def four_with_top(sketch: Sketch, rng: np.random.Generator, *, closed: bool) -> bool:
    """A 4 open at the top, as most of MNIST's are and left so, or closed by a stroke from its
    left arm's top to its stem's top, its bar carried past the stem if it stops there (closed
    and without that, it would be a 9). Only 4s open at the top: the open style takes the same
    ones, so both are measured on alike digits.
    """
    anatomy = four_bar_and_stem(sketch)
    if anatomy is None:
        return False
    top, _, _, _ = sketch.box
    upper = np.zeros_like(sketch.mask)
    upper[: top + round(0.4 * sketch.height)] = sketch.mask[: top + round(0.4 * sketch.height)]
    count, labels, stats, _ = cv2.connectedComponentsWithStats(upper.astype(np.uint8), 8)
    parts = [label for label in range(1, count) if stats[label, cv2.CC_STAT_AREA] >= 3]
    if len(parts) != 2:  # closed already, or not two strokes apart
        return False
    if not closed:
        return True
    arm, stem_part = sorted(parts, key=lambda label: stats[label, cv2.CC_STAT_LEFT])
    tops = []
    for label in (arm, stem_part):
        points = np.argwhere(labels == label).astype(np.float64)
        tops.append(endpoint(points, points[:, 0], at_max=False, reach=sketch.width / 2))
    pen = sketch.pen(rng)
    sketch.polyline(tops, pen)
    bar, stem = anatomy
    bar_end = np.flatnonzero(sketch.mask[bar - 1 : bar + 2].any(axis=0)).max()
    reach = stem + sketch.width / 2 + sketch.height * rng.uniform(0.2, 0.35)
    if bar_end < reach:
        sketch.polyline([(bar, stem), (bar + rng.uniform(-0.5, 0.5), reach)], pen)
    return True


def with_new_stem(sketch: Sketch, rng: np.random.Generator, *, loop: bool, curved: bool) -> bool:
    """A 9 (below its loop) or a 4 (below its bar) with its stem redrawn straight down, or
    curving to the left at its foot."""
    _, bottom, _, _ = sketch.box
    if loop:
        inside = holes(sketch.mask)
        if np.count_nonzero(inside) < 3:
            return False
        cut = np.nonzero(inside)[0].max() + sketch.width
        below = round(cut) + 1
        runs = ink_runs(sketch.mask[below]) if below < bottom - 2 else []
        if not runs:  # no stem below the loop
            return False
        column = float(runs[-1].mean())
    else:
        anatomy = four_bar_and_stem(sketch)
        if anatomy is None:
            return False
        bar, column = anatomy
        cut = bar + sketch.width
        below = round(cut) + 1
    start = (below - sketch.width, column)
    length = (bottom - start[0]) * rng.uniform(0.95, 1.1)
    sketch.erase_below(cut)
    if curved:
        hook = sketch.height * rng.uniform(0.15, 0.3)
        foot = (start[0] + length, column + rng.uniform(-0.05, 0.05) * length)
        end = (foot[0] - hook * rng.uniform(0.2, 0.5), column - hook)
        stem = bezier(start, foot, end)
    else:
        stem = np.array([start, (start[0] + length, column + rng.uniform(-0.1, 0.1) * length)])
    sketch.polyline(stem, sketch.pen(rng))
    return True


def two_with_loop(sketch: Sketch, rng: np.random.Generator) -> bool:
    """A 2 with a small loop where its diagonal meets its base, bulging out to the left."""
    if np.count_nonzero(holes(sketch.mask)):
        return False
    top, bottom, _, _ = sketch.box
    points = sketch.points[sketch.points[:, 0] >= top + 0.6 * sketch.height]
    corner = points[np.argmin(points[:, 1] - 0.3 * (points[:, 0] - bottom))]
    # Wide enough to stay open inside, whatever the pen.
    radius = max(sketch.height * rng.uniform(0.11, 0.16), 1.3 * sketch.width)
    squash = rng.uniform(0.7, 1.0)
    # Away from the diagonal (above, right) and the base (right), so the loop stays empty.
    centre = corner + np.array([-0.4 * radius * squash, -0.8 * radius])
    angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    loop = centre + np.stack([radius * squash * np.sin(angles), radius * np.cos(angles)], 1)
    sketch.polyline(loop, sketch.pen(rng), closed=True)
    return True


def zero_with_slash(sketch: Sketch, rng: np.random.Generator) -> bool:
    """A 0 with a slash through it, a little past its ring at both ends: leaning right 15-50
    degrees, and 20-40 degrees off the 0's own long axis (a slash along it would hide inside
    a narrow 0). 0s leaning right more than 30 degrees have no room for one."""
    points = sketch.points
    centre = points.mean(axis=0)
    axis = principal_axis(points)
    tilt = np.degrees(np.arctan2(-axis[1], axis[0]))  # from upright, top to the right
    if tilt > 30:
        return False
    angle = np.deg2rad(np.clip(tilt + rng.uniform(20, 40), 15, 50))
    direction = np.array([-np.cos(angle), np.sin(angle)])  # towards the upper right
    normal = np.array([direction[1], -direction[0]])
    # The ring's strokes the slash crosses: those on its line.
    on_line = np.abs((points - centre) @ normal) <= sketch.width
    along = (points[on_line] - centre) @ direction
    overshoot = sketch.height * rng.uniform(0.0, 0.1, 2)
    ends = [
        centre + (along.min() - overshoot[0]) * direction,
        centre + (along.max() + overshoot[1]) * direction,
    ]
    sketch.polyline(np.array(ends), sketch.pen(rng))
    return True


Draw = Callable[[Sketch, np.random.Generator], bool]


@dataclass(frozen=True)
class Style:
    """One way of writing: strokes added to a digit, or every digit drawn with a given pen."""

    digit: int | None  # None: any digit
    # Adds the style's strokes to a sketch of a digit; False (and nothing drawn) when the
    # style does not suit it.
    draw: Draw | None = None
    pen_widths: tuple[float, float] | None = None  # MNIST pixels, when drawn as a canvas
    # How often training picks this style among those a digit suits; 0: never (open 4s are
    # MNIST's own). A 1 with a flag alone and a closed 4 are what a Dense network takes for a 7
    # and a 9, and get twice the others' share.
    weight: float = 1.0

    def reshape(self, digit: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
        """The 28x28 digit in this style, in MNIST's form; None when the style does not suit
        it. A pen style changes nothing here: its pen is the drawing's."""
        if self.draw is None:
            return digit
        sketch = Sketch(digit)
        return sketch.finish() if self.draw(sketch, rng) else None


STYLES: dict[str, Style] = {
    "one_short_flag": Style(1, partial(one_with_flag, long_flag=False, base=False), weight=2),
    "one_long_flag": Style(1, partial(one_with_flag, long_flag=True, base=False), weight=2),
    "one_flag_and_base": Style(1, partial(one_with_flag, long_flag=False, base=True)),
    "one_long_flag_and_base": Style(1, partial(one_with_flag, long_flag=True, base=True)),
    "seven_crossbar": Style(7, seven_with_crossbar),
    "four_open_top": Style(4, partial(four_with_top, closed=False), weight=0),
    "four_closed_top": Style(4, partial(four_with_top, closed=True), weight=2),
    "four_straight_stem": Style(4, partial(with_new_stem, loop=False, curved=False)),
    "four_curved_stem": Style(4, partial(with_new_stem, loop=False, curved=True)),
    "nine_straight_stem": Style(9, partial(with_new_stem, loop=True, curved=False)),
    "nine_curved_stem": Style(9, partial(with_new_stem, loop=True, curved=True)),
    "two_loop": Style(2, two_with_loop),
    "zero_slash": Style(0, zero_with_slash),
    "marker": Style(None, pen_widths=(4.0, 5.5)),
    "thin_pen": Style(None, pen_widths=(0.5, 1.0)),
}


def drawn_with_pen(digit: np.ndarray, pen_width: float) -> np.ndarray:
    """A 28x28 digit redrawn along its centre lines with a round pen `pen_width` MNIST pixels
    wide, as the canvas renderer draws it, and brought back to MNIST's form by the serving
    pipeline's own steps (stroke width into MNIST's range, 20-pixel box, centre of mass)."""
    side = IMAGE_SIDE * FINE
    drawing = np.asarray(pen_strokes(digit, side, MARGIN * FINE, pen_width * FINE))
    ink = cv2.LUT(drawing, contrast_table(max(1, int(drawing.max()))))
    fine = normalize_stroke_width(*resample_to_fine_scale(ink, stroke_bounds(stroke_mask(ink))))
    return np.round(fit_to_mnist_field(fine) * 255).astype(np.uint8)


def style_rng(seed: int, name: str) -> np.random.Generator:
    """A random stream of the style `name`'s own: adding a style leaves the others' alone."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


@dataclass(frozen=True)
class StyledVariants:
    """Digits rewritten in the styles they suit, each with the index of the digit it came from
    and the weight of its style."""

    images: np.ndarray  # (m, 28, 28) uint8
    sources: np.ndarray  # (m,) indexes into the digits they were made from
    weights: np.ndarray  # (m,) the weight of each one's style


def variants_in_style(task: tuple[str, np.ndarray, int, float]) -> list[np.ndarray | None]:
    """(style name, digits, seed, pen share) -> the style's variant of each digit, or None
    where it does not suit; a share of them redrawn with a pen. One style's stream, in a
    process of its own if need be."""
    name, digits, seed, pen_share = task
    style = STYLES[name]
    rng = style_rng(seed, name)
    made: list[np.ndarray | None] = []
    for digit in digits:
        variant = style.reshape(digit, rng)
        if variant is not None:
            # Drawn whatever the share, so the variants are the same ones at any share.
            redrawn, pen_width = rng.random() < pen_share, rng.uniform(*PEN_WIDTHS)
            variant = drawn_with_pen(variant, pen_width) if redrawn else variant
        made.append(variant)
    return made


def styled_variants(
    images: np.ndarray,
    labels: np.ndarray,
    seed: int,
    pen_share: float = 0.0,
    workers: int = 1,
) -> StyledVariants:
    """Every trained reshaping style applied once to every digit it suits; a share
    `pen_share` of the variants then redrawn with a round pen, from hairline to marker. The
    styles are spread over `workers` processes; the variants are the same whatever their
    number."""
    names = [name for name, style in STYLES.items() if style.draw is not None and style.weight]
    indexes = [np.flatnonzero(labels == STYLES[name].digit) for name in names]
    tasks = [
        (name, images[chosen], seed, pen_share) for name, chosen in zip(names, indexes, strict=True)
    ]
    made = mapped(variants_in_style, tasks, workers)
    variants, sources, weights = [], [], []
    for name, chosen, results in zip(names, indexes, made, strict=True):
        for index, variant in zip(chosen, results, strict=True):
            if variant is not None:
                variants.append(variant)
                sources.append(index)
                weights.append(STYLES[name].weight)
    return StyledVariants(np.stack(variants), np.array(sources), np.array(weights))


def restyle(
    images: np.ndarray, variants: StyledVariants, share: float, rng: np.random.Generator
) -> np.ndarray:
    """A copy of `images` where each digit that some style suits is, with probability `share`,
    replaced by its variant in one of those styles, picked in proportion to their weights.
    The classes keep their sizes: a 1 with a flag stands in for a 1."""
    # Weighted picks for all digits at once: the largest log-weight plus Gumbel noise wins.
    keys = np.log(variants.weights) + rng.gumbel(size=len(variants.sources))
    order = np.argsort(-keys)
    sources, first = np.unique(variants.sources[order], return_index=True)
    chosen = rng.random(len(sources)) < share
    restyled = images.copy()
    restyled[sources[chosen]] = variants.images[order[first[chosen]]]
    return restyled


PEN_REDRAW_CHUNK = 1000  # digits per task: one seeded stream each, whatever the workers
PEN_REDRAW_STREAM = "pen_redraw"  # the redraws' own streams, apart from the styles'


def redrawn_chunk(task: tuple[np.ndarray, int, int]) -> np.ndarray:
    """(digits, seed, chunk index) -> each digit redrawn with a round pen of a random width,
    from hairline to marker. One chunk's stream, in a process of its own if need be."""
    digits, seed, chunk = task
    rng = np.random.default_rng([seed, zlib.crc32(PEN_REDRAW_STREAM.encode()), chunk])
    return np.stack([drawn_with_pen(digit, rng.uniform(*PEN_WIDTHS)) for digit in digits])


def pen_redraws(images: np.ndarray, seed: int, workers: int = 1) -> np.ndarray:
    """Every digit redrawn once with a round pen, as `drawn_with_pen` draws the styled ones;
    the same redraws whatever the number of `workers` processes."""
    tasks = [
        (images[start : start + PEN_REDRAW_CHUNK], seed, chunk)
        for chunk, start in enumerate(range(0, len(images), PEN_REDRAW_CHUNK))
    ]
    made = mapped(redrawn_chunk, tasks, workers)
    return np.concatenate(made) if made else images[:0].copy()


def redraw_with_pen(
    images: np.ndarray, redraws: np.ndarray, share: float, rng: np.random.Generator
) -> np.ndarray:
    """A copy of `images` where each of the first len(`redraws`) digits is, with probability
    `share`, replaced by its pen redraw; digits past them (added corrections) stay as drawn."""
    chosen = np.flatnonzero(rng.random(len(redraws)) < share)
    redrawn = images.copy()
    redrawn[chosen] = redraws[chosen]
    return redrawn
