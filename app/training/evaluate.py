"""Evaluate a model on MNIST's test set, raw, drawn as real canvases and in styles MNIST
lacks, and record it.

    python -m app.evaluate --data-dir ../shared/data/mnist [--model models/mnist_dense.keras]

Four measures, the first three each with a confusion matrix and per-digit accuracy:

1. the raw MNIST test set, as the network was trained;
2. canvas-realistic: each test digit rendered as a person might draw it (three canvas sizes,
   any size and position, scanned strokes made thinner or bolder, or redrawn with a pen from
   hairline to marker, rotated up to 15 degrees, slanted, both polarities, transparent
   backgrounds, PNG and JPEG) and sent through the serving pipeline, bytes to prediction.
   The drawings come from a fixed seed, so figures are comparable between models.
3. the style set: test digits rewritten in the styles of app/training/styles.py (a 1 with a
   flag, a 7 with a crossbar, a closed 4, a slashed 0 ...; every digit with a marker or a thin
   pen), the same number of each style, drawn and sent through the serving pipeline as the
   canvas-realistic set is; with the accuracy of each style. Also from a fixed seed.
4. whole numbers: seeded numbers of 2-6 test digits written on wide canvases, read through
   the server's segmentation (app.training.number_evaluation); `--numbers` measures only
   these.

The figures are written into the model card beside the model.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.mnist import NUM_CLASSES
from app.paths import DEFAULT_MODEL_PATH
from app.serving.inference import softmax
from app.serving.model_file import (
    load_calibrated_classifier,
    model_card_path,
    read_model_card,
)
from app.training.artifacts import write_json_atomically
from app.training.calibration import expected_calibration_error
from app.training.data import MnistData, MnistDataError, load_mnist, to_model_input
from app.training.drawings import DrawingStyle, random_style
from app.training.drawn_sets import MAX_ROTATION, MAX_SLANT, canvas_styles, drawn_inputs
from app.training.number_evaluation import NUMBERS_SEED, NumberMeasure, measure_numbers, number_jobs
from app.training.numbers import Spacing
from app.training.styles import STYLES, style_rng

CANVAS_SEED = 20261126
STYLE_SEED = 20261127
STYLE_SAMPLES = 300  # test digits per style in the style set
MAX_STYLE_SAMPLES = 500  # every style suits more test digits (the fewest: 518 1s, flagged)
# The style set and the numbers are built from the test split when it is this large; a
# smaller one (exported corrections) is measured raw and drawn only.
MIN_TEST_DIGITS = 1000
# The number sets: the card's prefix of their figures, their spacing, their title.
NUMBER_SETS: tuple[tuple[str, Spacing, str], ...] = (
    ("numbers", "apart", "Numbers"),
    ("tight_numbers", "tight", "Tight numbers"),
    ("overlapping_numbers", "overlapping", "Overlapping numbers"),
)


@dataclass(frozen=True)
class Measure:
    """Accuracy of predictions against labels, with the detail behind it."""

    accuracy: float
    per_digit: list[float]
    confusion: list[list[int]]  # rows: true digit, columns: predicted

    @classmethod
    def of(cls, predicted: np.ndarray, labels: np.ndarray) -> "Measure":
        confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
        np.add.at(confusion, (labels, predicted), 1)
        per_digit = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
        return cls(
            accuracy=round(float(np.mean(predicted == labels)), 4),
            per_digit=[round(float(value), 4) for value in per_digit],
            confusion=confusion.tolist(),
        )


@dataclass(frozen=True)
class StyleSet:
    """Test digits rewritten in each style, with how each is drawn on its canvas."""

    digits: np.ndarray  # (n, 28, 28) uint8, the style applied
    labels: np.ndarray
    styles: list[str]  # the style of each digit
    drawings: list[DrawingStyle]


def style_set(images: np.ndarray, labels: np.ndarray, per_style: int) -> StyleSet:
    """`per_style` test digits in every style of STYLES, from a fixed seed per style.

    A reshaping style takes its digit's test images in a seeded order, skipping those it does
    not suit; a pen style takes any digits and draws them with its pen.
    """
    digits, chosen_labels, names, drawings = [], [], [], []
    for name, style in STYLES.items():
        rng = style_rng(STYLE_SEED, name)
        pens = (
            {} if style.pen_widths is None else {"pen_share": 1.0, "pen_widths": style.pen_widths}
        )
        candidates = (
            np.arange(len(images)) if style.digit is None else np.flatnonzero(labels == style.digit)
        )
        chosen = 0
        for index in rng.permutation(candidates):
            digit = style.reshape(images[index], rng)
            if digit is None:
                continue
            digits.append(digit)
            chosen_labels.append(labels[index])
            names.append(name)
            drawings.append(
                random_style(rng, max_rotation=MAX_ROTATION, max_slant=MAX_SLANT, **pens)
            )
            chosen += 1
            if chosen == per_style:
                break
    return StyleSet(np.stack(digits), np.array(chosen_labels), names, drawings)


def format_measure(title: str, measure: Measure) -> str:
    lines = [
        f"{title}: accuracy {measure.accuracy:.4f}",
        "",
        "digit  accuracy   "
        + "".join(f"{digit:>6}" for digit in range(NUM_CLASSES))
        + "   <- predicted",
    ]
    for digit, (accuracy, row) in enumerate(zip(measure.per_digit, measure.confusion, strict=True)):
        lines.append(f"{digit:>5}  {accuracy:8.4f}   " + "".join(f"{count:>6}" for count in row))
    return "\n".join(lines)


def format_styles(per_style: dict[str, dict[str, float]]) -> str:
    lines = ["style                     samples  accuracy"]
    lines += [
        f"{name:<24}{figures['samples']:>9}  {figures['accuracy']:8.4f}"
        for name, figures in per_style.items()
    ]
    return "\n".join(lines)


def calibration_errors(
    prefix: str, logits: np.ndarray, labels: np.ndarray, temperature: float
) -> dict[str, float]:
    """Expected calibration error of the probabilities served (at the card's temperature) and
    of the network as trained (temperature 1)."""
    served, as_trained = softmax(logits / temperature), softmax(logits)
    return {
        f"{prefix}_ece": round(expected_calibration_error(served, labels), 4),
        f"{prefix}_ece_uncalibrated": round(expected_calibration_error(as_trained, labels), 4),
    }


def evaluate(
    model_path: Path, data: MnistData, samples: int, style_samples: int, workers: int
) -> dict[str, Any]:
    """The measures of the model at `model_path` on single digits, as its card records them.

    A small test split (exported corrections, say) is measured raw and drawn; the style set
    needs MNIST-sized test data and is left out below MIN_TEST_DIGITS.
    """
    samples = min(samples, len(data.x_test))
    with_styles = len(data.x_test) >= MIN_TEST_DIGITS
    styled = style_set(data.x_test, data.y_test, style_samples) if with_styles else None
    # Both sets drawn in one pool: starting the processes costs seconds.
    drawn = drawn_inputs(
        np.concatenate([data.x_test[:samples]] + ([styled.digits] if styled else [])),
        canvas_styles(samples, CANVAS_SEED) + (styled.drawings if styled else []),
        workers,
    )
    classifier = load_calibrated_classifier(model_path)
    raw_logits = classifier.logits(to_model_input(data.x_test))
    drawn_logits = classifier.logits(drawn)
    raw = Measure.of(raw_logits.argmax(axis=1), data.y_test)
    canvas_labels = data.y_test[:samples]
    canvas = Measure.of(drawn_logits[:samples].argmax(axis=1), canvas_labels)
    figures = {
        "temperature": classifier.temperature,
        "test_accuracy": raw.accuracy,
        "test_per_digit": raw.per_digit,
        "test_confusion": raw.confusion,
        **calibration_errors("test", raw_logits, data.y_test, classifier.temperature),
        "canvas_accuracy": canvas.accuracy,
        "canvas_per_digit": canvas.per_digit,
        "canvas_confusion": canvas.confusion,
        **calibration_errors(
            "canvas", drawn_logits[:samples], canvas_labels, classifier.temperature
        ),
        "canvas_samples": samples,
        "canvas_seed": CANVAS_SEED,
    }
    if styled is None:
        return figures
    style_predicted = drawn_logits[samples:].argmax(axis=1)
    style = Measure.of(style_predicted, styled.labels)
    names = np.array(styled.styles)
    per_style = {
        name: {
            "samples": int(np.count_nonzero(names == name)),
            "accuracy": Measure.of(
                style_predicted[names == name], styled.labels[names == name]
            ).accuracy,
        }
        for name in STYLES
    }
    return figures | {
        "style_accuracy": style.accuracy,
        "style_per_style": per_style,
        "style_per_digit": style.per_digit,
        "style_confusion": style.confusion,
        "style_samples": len(styled.labels),
        "style_seed": STYLE_SEED,
    }


def evaluate_numbers(model_path: Path, data: MnistData, count: int, workers: int) -> dict[str, Any]:
    """Reading whole numbers: with the gaps people leave, with digits almost touching, and
    with digits overlapping a little; with the probabilities the server gives (calibrated),
    which choose between reading a wide piece as one digit or two."""
    if len(data.x_test) < MIN_TEST_DIGITS:
        return {}
    classifier = load_calibrated_classifier(model_path)
    figures: dict[str, Any] = {"numbers_seed": NUMBERS_SEED}
    for prefix, spacing, _ in NUMBER_SETS:
        jobs = number_jobs(data.x_test, data.y_test, count, spacing)
        figures |= measure_numbers(classifier, jobs, workers).as_card(prefix)
    return figures


def format_numbers(title: str, measure: NumberMeasure) -> str:
    return (
        f"{title}: number accuracy {measure.number_accuracy:.4f}, digit count "
        f"{measure.count_accuracy:.4f}, per digit {measure.digit_accuracy:.4f}"
    )


def report(figures: dict[str, Any]) -> str:
    """The figures measured, as the evaluation prints them."""
    parts = []
    for title, prefix in (
        ("Raw MNIST test set", "test"),
        ("Canvas-realistic", "canvas"),
        ("Style set", "style"),
    ):
        if f"{prefix}_accuracy" in figures:
            measure = Measure(
                figures[f"{prefix}_accuracy"],
                figures[f"{prefix}_per_digit"],
                figures[f"{prefix}_confusion"],
            )
            parts.append(format_measure(title, measure))
    if "style_per_style" in figures:
        parts.append(format_styles(figures["style_per_style"]))
    if "temperature" in figures:
        parts.append(
            f"calibration (temperature {figures['temperature']:.3f}): expected calibration "
            f"error {figures['test_ece']:.4f} raw (uncalibrated "
            f"{figures['test_ece_uncalibrated']:.4f}), {figures['canvas_ece']:.4f} "
            f"canvas-realistic (uncalibrated {figures['canvas_ece_uncalibrated']:.4f})"
        )
        sets = [f"canvas-realistic set: {figures['canvas_samples']} drawings, seed {CANVAS_SEED}"]
        if "style_samples" in figures:
            sets.append(f"style set: {figures['style_samples']} drawings, seed {STYLE_SEED}")
        else:
            sets.append(f"style set, numbers: skipped (fewer than {MIN_TEST_DIGITS} test digits)")
        parts.append("\n".join(sets))
    if "numbers_seed" in figures:
        lines = [
            format_numbers(
                title,
                NumberMeasure(
                    figures[f"{prefix}_number_accuracy"],
                    figures[f"{prefix}_count_accuracy"],
                    figures[f"{prefix}_digit_accuracy"],
                    figures[f"{prefix}_count"],
                ),
            )
            for prefix, _, title in NUMBER_SETS
        ]
        count = figures["numbers_count"]
        lines.append(f"number sets: {count} numbers of 2-6 digits each, seed {NUMBERS_SEED}")
        parts.append("\n".join(lines))
    elif not parts:
        parts.append(f"numbers: skipped (fewer than {MIN_TEST_DIGITS} test digits)")
    return "\n\n".join(parts)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app.evaluate", description="Evaluate a Dense MNIST model."
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="model file")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="directory of the four MNIST IDX files; default: keras.datasets.mnist.load_data()",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=10_000,
        choices=range(1, 10_001),
        metavar="N",
        help="test digits in the canvas-realistic set (1-10000, default all)",
    )
    parser.add_argument(
        "--style-samples",
        type=int,
        default=STYLE_SAMPLES,
        choices=range(1, MAX_STYLE_SAMPLES + 1),
        metavar="N",
        help=f"test digits per style in the style set (1-{MAX_STYLE_SAMPLES}, "
        f"default {STYLE_SAMPLES})",
    )
    parser.add_argument(
        "--numbers", action="store_true", help="measure only the reading of whole numbers"
    )
    parser.add_argument(
        "--number-count",
        type=int,
        default=1000,
        choices=range(1, 100_001),
        metavar="N",
        help="numbers in each of the three number sets (default 1000)",
    )
    parser.add_argument("--workers", type=int, default=2, help="rendering processes")
    parser.add_argument(
        "--no-write", action="store_true", help="print only; leave the model card as it is"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if not arguments.model.is_file():
        print(f"error: {arguments.model}: model file not found", file=sys.stderr)
        return 2
    try:
        data = load_mnist(arguments.data_dir)
    except MnistDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    figures = (
        {}
        if arguments.numbers
        else evaluate(
            arguments.model, data, arguments.samples, arguments.style_samples, arguments.workers
        )
    )
    figures |= evaluate_numbers(arguments.model, data, arguments.number_count, arguments.workers)
    print(report(figures))
    if not arguments.no_write:
        card = read_model_card(arguments.model)
        card["evaluation"] = {**card.get("evaluation", {}), **figures}
        write_json_atomically(model_card_path(arguments.model), card)
        print(f"written into {model_card_path(arguments.model)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
