"""Reading whole numbers, measured: seeded numbers of 2-6 MNIST test digits, written as
people write them (app.training.numbers), read through the server's own segmentation and
preprocessing (bytes to digits), each digit then classified by the model.

Three sets: "numbers" with the gaps people leave between digits, "tight" where the digits
almost touch, and "overlapping" where their boxes overlap a little. Each reports number
accuracy (every digit right, none missing or extra), digit-count accuracy, and per-digit
accuracy over the numbers whose count was right.
"""

from dataclasses import dataclass

import numpy as np

from app.serving.inference import DenseClassifier
from app.serving.preprocessing import Limits
from app.serving.segmentation import ReadDigit, chosen_digits, read_digits
from app.training.numbers import Spacing, random_number_style, write_number
from app.training.processes import mapped

NUMBERS_SEED = 20261129
DIGIT_COUNTS = (2, 6)
# Each set's own stream of the seed (the first two as they were before the third).
SPACING_STREAMS: dict[Spacing, int] = {"apart": 0, "tight": 1, "overlapping": 2}


@dataclass(frozen=True)
class NumberJob:
    digits: np.ndarray  # (count, 28, 28) uint8
    labels: str
    spacing: Spacing
    seed: int


@dataclass(frozen=True)
class NumberMeasure:
    number_accuracy: float
    count_accuracy: float
    digit_accuracy: float  # over the numbers whose digit count was read right
    numbers: int

    def as_card(self, prefix: str) -> dict[str, float | int]:
        return {
            f"{prefix}_number_accuracy": self.number_accuracy,
            f"{prefix}_count_accuracy": self.count_accuracy,
            f"{prefix}_digit_accuracy": self.digit_accuracy,
            f"{prefix}_count": self.numbers,
        }


def number_jobs(
    images: np.ndarray, labels: np.ndarray, count: int, spacing: Spacing
) -> list[NumberJob]:
    """`count` seeded numbers of 2-6 distinct test digits each."""
    rng = np.random.default_rng([NUMBERS_SEED, SPACING_STREAMS[spacing]])
    jobs = []
    for _ in range(count):
        length = int(rng.integers(DIGIT_COUNTS[0], DIGIT_COUNTS[1] + 1))
        chosen = rng.choice(len(images), length, replace=False)
        text = "".join(str(int(label)) for label in labels[chosen])
        jobs.append(NumberJob(images[chosen], text, spacing, int(rng.integers(2**32))))
    return jobs


def read_number(job: NumberJob) -> list[ReadDigit]:
    """The digits the server finds in the written number (see read_digits)."""
    style = random_number_style(np.random.default_rng(job.seed), len(job.labels), job.spacing)
    return read_digits(write_number(job.digits, style).image, Limits())


def measure_numbers(
    classifier: DenseClassifier, jobs: list[NumberJob], workers: int
) -> NumberMeasure:
    found = mapped(read_number, jobs, workers, chunksize=16)
    right = counted = digits_right = digits_counted = 0
    for job, digits in zip(jobs, found, strict=True):
        chosen = chosen_digits(digits, classifier.predict)
        read = "".join(str(int(probabilities.argmax())) for _, probabilities in chosen)
        right += read == job.labels
        if len(read) == len(job.labels):
            counted += 1
            digits_right += sum(a == b for a, b in zip(read, job.labels, strict=True))
            digits_counted += len(read)
    return NumberMeasure(
        number_accuracy=round(right / len(jobs), 4),
        count_accuracy=round(counted / len(jobs), 4),
        digit_accuracy=round(digits_right / max(1, digits_counted), 4),
        numbers=len(jobs),
    )
