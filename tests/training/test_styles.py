"""Handwriting styles: each adds its stroke where it belongs, on the digit it suits, seeded."""

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from app.serving.preprocessing import stroke_width
from app.training.data import MnistData
from app.training.styles import (
    FINE,
    MARGIN,
    STYLES,
    Sketch,
    StyledVariants,
    drawn_with_pen,
    holes,
    pen_redraws,
    redraw_with_pen,
    restyle,
    styled_variants,
)

DIGITS_PER_STYLE = 40
BEYOND = FINE  # an added stroke reaching a whole MNIST pixel past the original's, at least
RESHAPING_STYLES = [name for name, style in STYLES.items() if style.draw is not None]


@dataclass(frozen=True)
class Change:
    """What a style did to one digit: its strokes before and after at fine scale, where the
    added and removed ones can be seen, and the 28x28 original and finished variant."""

    original: np.ndarray
    before: np.ndarray
    after: np.ndarray
    variant: np.ndarray

    @property
    def added(self) -> np.ndarray:
        return self.after & ~self.before

    @property
    def removed(self) -> np.ndarray:
        return self.before & ~self.after

    @property
    def box(self) -> tuple[int, int, int, int]:
        """top, bottom, left, right of the original strokes, inclusive."""
        rows, columns = np.nonzero(self.before)
        return rows.min(), rows.max(), columns.min(), columns.max()

    @property
    def height(self) -> int:
        top, bottom, _, _ = self.box
        return bottom - top + 1

    def original_columns(self, start: float, stop: float) -> np.ndarray:
        """Columns of the original strokes in a band of rows, as shares of its height."""
        top, _, _, _ = self.box
        band = self.before[top + round(start * self.height) : top + round(stop * self.height)]
        return np.nonzero(band)[1]

    def added_rows(self) -> np.ndarray:
        """Rows of the added strokes, as shares of the original's height from its top."""
        top, _, _, _ = self.box
        return (np.nonzero(self.added)[0] - top) / self.height


def changes_of(mnist: MnistData, name: str) -> list[Change]:
    """The style's change to each of the first training digits it suits."""
    style = STYLES[name]
    rng = np.random.default_rng(0)
    changes = []
    for digit in mnist.x_train[mnist.y_train == style.digit][: 4 * DIGITS_PER_STYLE]:
        sketch = Sketch(digit)
        before = sketch.strokes()
        if style.draw(sketch, rng):
            changes.append(Change(digit, before, sketch.strokes(), sketch.finish()))
    assert len(changes) >= DIGITS_PER_STYLE, f"{name} suits too few digits"
    return changes[:DIGITS_PER_STYLE]


Changes = Callable[[str], list[Change]]


@pytest.fixture(scope="module")
def changes(mnist: MnistData) -> Changes:
    """`changes_of` a style, made once per module."""
    made: dict[str, list[Change]] = {}

    def of(name: str) -> list[Change]:
        if name not in made:
            made[name] = changes_of(mnist, name)
        return made[name]

    return of


def share(condition: list[bool]) -> float:
    return float(np.mean(condition))


def pen_width(change: Change) -> float:
    """The original's stroke width, in fine pixels."""
    return stroke_width(change.before)


def hole_count(image: np.ndarray) -> int:
    """Enclosed background regions of a 28x28 digit: the insides of its loops."""
    count, _ = cv2.connectedComponents(holes(image > 127).astype(np.uint8), connectivity=4)
    return count - 1


def loop_height(image: np.ndarray) -> float | None:
    """Where a 28x28 digit's loops are, as a share of its height from the top."""
    rows = np.nonzero(holes(image > 127))[0]
    top, bottom = np.nonzero((image > 127).any(axis=1))[0][[0, -1]]
    return (rows.mean() - top) / (bottom - top) if rows.size else None


def foot_spread(image: np.ndarray) -> int:
    """Columns the strokes of a 28x28 digit's lowest fifth span."""
    mask = image > 127
    rows = np.flatnonzero(mask.any(axis=1))
    foot = mask[rows[-1] - round(0.2 * (rows[-1] - rows[0])) : rows[-1] + 1]
    columns = np.flatnonzero(foot.any(axis=0))
    return int(columns.max() - columns.min() + 1)


@pytest.mark.parametrize("name", ["one_short_flag", "one_long_flag"])
def test_a_flag_leaves_the_top_of_a_1_down_to_the_left(changes: Changes, name: str) -> None:
    for change in changes(name):
        rows, columns = np.nonzero(change.added)
        top, _, _, _ = change.box
        assert abs(rows.min() - top) <= pen_width(change)  # from the top of the stem
        assert change.added_rows().mean() < 0.35  # down its upper part
        assert columns.min() < change.original_columns(0, 0.3).min() - BEYOND  # to its left


def test_a_long_flag_reaches_further_down_than_a_short_one(changes: Changes) -> None:
    short = [change.added_rows().max() for change in changes("one_short_flag")]
    long = [change.added_rows().max() for change in changes("one_long_flag")]
    assert max(short) < 0.45
    assert min(long) > 0.3
    assert np.mean(long) >= np.mean(short) + 0.12


@pytest.mark.parametrize("name", ["one_flag_and_base", "one_long_flag_and_base"])
def test_a_base_serif_crosses_the_foot_of_a_1(changes: Changes, name: str) -> None:
    for change in changes(name):
        _, bottom, _, _ = change.box
        stem = change.original_columns(0.85, 1)
        columns = np.nonzero(change.added[bottom - round(0.1 * change.height) :])[1]
        assert columns.min() < stem.min() - BEYOND  # on both sides
        assert columns.max() > stem.max() + BEYOND
        assert change.added_rows().min() < 0.1  # and its flag at the top


def test_a_crossbar_crosses_the_middle_of_a_7(changes: Changes) -> None:
    for change in changes("seven_crossbar"):
        rows = change.added_rows()
        assert rows.min() > 0.3
        assert rows.max() < 0.8
        stem = change.original_columns(rows.mean() - 0.03, rows.mean() + 0.03)
        columns = np.nonzero(change.added)[1]
        assert columns.min() < stem.min() - BEYOND
        assert columns.max() > stem.max() + BEYOND
        assert not change.removed.any()


def test_a_4_is_closed_at_the_top_or_left_open(changes: Changes) -> None:
    # The same 4s in both styles: those open at the top.
    for opened, closed in zip(changes("four_open_top"), changes("four_closed_top"), strict=True):
        np.testing.assert_array_equal(opened.original, closed.original)
        assert not opened.added.any()
        assert not opened.removed.any()
        assert loop_height(opened.variant) is None
        assert closed.added_rows().min() < 0.2  # a lid
        assert loop_height(closed.variant) < 0.5  # closing the top, above the bar
        # The bar crosses the stem, as the stem's foot shows where it is.
        stem_right = closed.original_columns(0.85, 1).max()
        top, _, _, _ = closed.box
        bar = closed.after[top + round(0.35 * closed.height) : top + round(0.85 * closed.height)]
        widest_row = bar[np.argmax(bar.sum(axis=1))]
        assert np.flatnonzero(widest_row).max() > stem_right + BEYOND


@pytest.mark.parametrize("digit", ["four", "nine"])
def test_a_stem_is_redrawn_straight_or_curving_left(changes: Changes, digit: str) -> None:
    straight = changes(f"{digit}_straight_stem")
    curved = changes(f"{digit}_curved_stem")
    for change in [*straight, *curved]:
        # Only the stem is redrawn: what is removed lies below the loop, or the bar (where the
        # new stem covers the old one, nothing is).
        removed_rows = np.nonzero(change.removed)[0]
        if removed_rows.size == 0:
            continue
        if digit == "nine":
            loop_bottom = (np.nonzero(holes(change.original > 127))[0].max() + MARGIN) * FINE
            assert removed_rows.min() > loop_bottom
        else:
            top, _, _, _ = change.box
            assert removed_rows.min() > top + 0.35 * change.height
    # A straight stem's foot is about a stroke wide; a curved one hooks a few pixels left.
    straight_feet = [foot_spread(change.variant) for change in straight]
    curved_feet = [foot_spread(change.variant) for change in curved]
    assert np.median(straight_feet) <= 4
    assert np.median(curved_feet) >= np.median(straight_feet) + 3
    if digit == "nine":  # with its loop
        assert share([hole_count(change.variant) >= 1 for change in [*straight, *curved]]) >= 0.9


def test_a_looped_2_has_a_loop_at_its_foot(changes: Changes) -> None:
    for change in changes("two_loop"):
        _, _, left, right = change.box
        columns = np.nonzero(change.added)[1]
        assert change.added_rows().mean() > 0.5
        assert columns.mean() < (left + right) / 2
        assert hole_count(change.variant) >= 1
    heights = [loop_height(change.variant) for change in changes("two_loop")]
    assert share([height > 0.5 for height in heights]) >= 0.9


def test_a_slash_cuts_a_0_in_two(changes: Changes) -> None:
    cut = []
    for change in changes("zero_slash"):
        centre = np.argwhere(change.before).mean(axis=0)
        added = np.argwhere(change.added)
        assert np.linalg.norm(added - centre, axis=1).min() < pen_width(change)  # through it
        # Across the ring, from one side to the other.
        direction = np.linalg.svd(added - added.mean(axis=0), full_matrices=False)[2][0]
        ring = np.argwhere(change.before) @ direction
        assert np.ptp(added @ direction) > 0.7 * np.ptp(ring)
        if hole_count(change.original) == 1:  # a closed ring
            cut.append(hole_count(change.variant) >= 2)
    assert len(cut) >= 20
    # (A bold ring's small halves can fill in, a hairline ring break up at 28x28.)
    assert share(cut) >= 0.8


@pytest.mark.parametrize("name", RESHAPING_STYLES)
def test_added_strokes_are_as_wide_as_the_digits_own(changes: Changes, name: str) -> None:
    ratios = [
        stroke_width(change.variant > 127) / stroke_width(change.original > 127)
        for change in changes(name)
    ]
    assert 0.8 < np.median(ratios) < 1.25


def test_variants_keep_mnist_form(changes: Changes) -> None:
    variants = np.stack([change.variant for name in RESHAPING_STYLES for change in changes(name)])
    rows, columns = np.indices((28, 28))
    mass = variants.sum(axis=(1, 2), dtype=np.float64)
    centre_row = (variants * rows).sum(axis=(1, 2)) / mass
    centre_column = (variants * columns).sum(axis=(1, 2)) / mass
    assert np.abs(centre_row - 14).max() < 1.0
    assert np.abs(centre_column - 14).max() < 1.0
    for variant in variants:
        strokes = np.argwhere(variant > 127)
        assert 19 <= np.ptp(strokes, axis=0).max() + 1 <= 21


@pytest.mark.parametrize("pen", [0.6, 4.5])
def test_a_pen_redraws_a_digit_as_the_serving_pipeline_would_see_it(
    mnist: MnistData, pen: float
) -> None:
    digits = mnist.x_train[:20]
    drawn = np.stack([drawn_with_pen(digit, pen) for digit in digits])
    # From hairline or marker, strokes come out in MNIST's range of widths (1.6 to 3.7).
    widths = [stroke_width(d > 127) for d in drawn]
    assert 1.4 < np.median(widths) < 4.0
    # The same digits, still: each nearest to its own original among the twenty.
    distances = ((drawn[:, None].astype(float) - digits[None]) ** 2).sum(axis=(2, 3))
    assert (distances.argmin(axis=1) == np.arange(20)).mean() >= 0.9
    for digit in drawn:
        strokes = np.argwhere(digit > 127)
        assert 19 <= np.ptp(strokes, axis=0).max() + 1 <= 21


POOL_DIGITS = 600


@pytest.fixture(scope="module")
def pool(mnist: MnistData) -> StyledVariants:
    """Every style applied to the first training digits it suits."""
    return styled_variants(mnist.x_train[:POOL_DIGITS], mnist.y_train[:POOL_DIGITS], seed=0)


def test_variants_are_seeded(mnist: MnistData, pool: StyledVariants) -> None:
    images, labels = mnist.x_train[:POOL_DIGITS], mnist.y_train[:POOL_DIGITS]
    again = styled_variants(images, labels, seed=0)
    other = styled_variants(images, labels, seed=1)
    np.testing.assert_array_equal(pool.images, again.images)
    np.testing.assert_array_equal(pool.sources, again.sources)
    np.testing.assert_array_equal(pool.sources, other.sources)  # the same digits suit
    assert np.abs(pool.images.astype(int) - other.images).mean() > 5  # in other ways


def test_variants_are_the_same_made_in_several_processes(mnist: MnistData) -> None:
    images, labels = mnist.x_train[:200], mnist.y_train[:200]
    alone = styled_variants(images, labels, seed=0, pen_share=0.3)
    spread = styled_variants(images, labels, seed=0, pen_share=0.3, workers=2)
    np.testing.assert_array_equal(alone.images, spread.images)
    np.testing.assert_array_equal(alone.sources, spread.sources)


def test_variants_come_from_the_digits_their_style_is_for(
    mnist: MnistData, pool: StyledVariants
) -> None:
    labels = mnist.y_train[:POOL_DIGITS]
    assert set(labels[pool.sources].tolist()) == {STYLES[name].digit for name in RESHAPING_STYLES}
    # Open 4s are MNIST's own: training does not add them again.
    open_fours = {
        index
        for index in np.flatnonzero(labels == 4)
        if STYLES["four_open_top"].reshape(mnist.x_train[index], np.random.default_rng(0))
        is not None
    }
    per_four = np.bincount(pool.sources[np.isin(pool.sources, list(open_fours))])
    assert per_four.max() == 3  # closed at the top, straight stem, curved stem


def test_a_share_of_the_variants_is_drawn_with_a_pen(
    mnist: MnistData, pool: StyledVariants
) -> None:
    images, labels = mnist.x_train[:POOL_DIGITS], mnist.y_train[:POOL_DIGITS]
    some = styled_variants(images, labels, seed=0, pen_share=0.3)
    np.testing.assert_array_equal(some.sources, pool.sources)
    redrawn = (some.images != pool.images).any(axis=(1, 2))
    assert 0.22 < redrawn.mean() < 0.38


def test_restyle_replaces_a_share_and_keeps_the_rest(mnist: MnistData, pool: StyledVariants):
    images = mnist.x_train[:POOL_DIGITS]
    restyled = restyle(images, pool, 0.3, np.random.default_rng(0))
    changed = np.flatnonzero((restyled != images).any(axis=(1, 2)))
    suited = np.unique(pool.sources)
    assert set(changed) <= set(suited)
    assert 0.24 < len(changed) / len(suited) < 0.36
    for index in changed:  # by one of its own variants
        assert (pool.images[pool.sources == index] == restyled[index]).all(axis=(1, 2)).any()
    assert restyle(images, pool, 0.0, np.random.default_rng(0)).tobytes() == images.tobytes()


def test_restyle_picks_styles_by_weight(mnist: MnistData, pool: StyledVariants) -> None:
    images = mnist.x_train[:POOL_DIGITS]
    sources = np.unique(pool.sources)
    picked_weights, expected = [], []
    for seed in range(20):
        restyled = restyle(images, pool, 1.0, np.random.default_rng(seed))
        for index in sources:
            mine = pool.sources == index
            [variant] = np.flatnonzero(mine & (pool.images == restyled[index]).all(axis=(1, 2)))
            picked_weights.append(pool.weights[variant])
            expected.append(
                pool.weights[mine & (pool.weights == 2)].sum() / pool.weights[mine].sum()
            )
    # The styles weighted 2 (a flag alone, a closed top) are picked in proportion.
    assert abs(np.mean(np.array(picked_weights) == 2) - np.mean(expected)) < 0.03
    assert np.mean(expected) > 0.1


def test_pen_redraws_are_seeded_and_the_same_made_in_several_processes(
    mnist: MnistData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of 40 for this test: several of them from a few digits (the redraws take 2.7 ms
    # a digit; 1,100 digits in chunks of 1,000 made this test take 16 s).
    monkeypatch.setattr("app.training.styles.PEN_REDRAW_CHUNK", 40)
    images = mnist.x_train[:100]
    alone = pen_redraws(images, seed=0)
    np.testing.assert_array_equal(alone, pen_redraws(images, seed=0, workers=2))
    assert alone.shape == images.shape and alone.dtype == np.uint8
    assert np.abs(alone.astype(int) - pen_redraws(images, seed=1)).mean() > 1  # other pens
    # Redrawn, not copied: a pen's strokes differ from the scan's.
    assert (alone != images).any(axis=(1, 2)).all()


def test_redraw_with_pen_replaces_a_share_and_leaves_digits_past_the_redraws(
    mnist: MnistData,
) -> None:
    images = mnist.x_train[:POOL_DIGITS]
    redraws = pen_redraws(images[:500], seed=0)
    redrawn = redraw_with_pen(images, redraws, 0.3, np.random.default_rng(0))
    changed = np.flatnonzero((redrawn != images).any(axis=(1, 2)))
    assert 0.24 < len(changed) / len(redraws) < 0.36
    assert changed.max() < len(redraws)  # the digits past them (corrections) stay as drawn
    np.testing.assert_array_equal(redrawn[changed], redraws[changed])
    unchanged = redraw_with_pen(images, redraws, 0.0, np.random.default_rng(0))
    assert unchanged.tobytes() == images.tobytes()
