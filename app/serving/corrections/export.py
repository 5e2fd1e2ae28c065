"""Corrections as MNIST: the four IDX files, read by `app.evaluate --data-dir`,
`app.train --extra-data` and any MNIST tool.

Each correction is the 28x28 input the server computed from the drawing (8 bits a pixel, as
MNIST stores its digits) with the digit the person said it is. Every fifth correction, by
id, goes to the test files: a correction stays on the same side in every export while the
store grows, so a model trained on one export is never evaluated on its own training digits.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.idx import IDX_FILE_NAMES, write_idx
from app.mnist import IMAGE_SIDE
from app.serving.corrections.store import CorrectionsStore

TEST_EVERY = 5


@dataclass(frozen=True)
class ExportedCounts:
    train: int
    test: int


class NothingToExportError(Exception):
    """The store holds no correction yet."""


def export_corrections(store: CorrectionsStore, directory: Path) -> ExportedCounts:
    """Write every correction in `store` into `directory` as MNIST's four IDX files."""
    ids, inputs, labels = [], [], []
    for correction in store.all():
        ids.append(correction.id)
        inputs.append(correction.model_input)
        labels.append(correction.label)
    if not ids:
        raise NothingToExportError("no corrections in the store yet: nothing written")
    images = np.frombuffer(b"".join(inputs), dtype=np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    digits = np.array(labels, dtype=np.uint8)
    test = np.array(ids, dtype=np.int64) % TEST_EVERY == 0
    directory.mkdir(parents=True, exist_ok=True)
    for split, chosen in (("train", ~test), ("test", test)):
        write_idx(directory / IDX_FILE_NAMES[f"{split}_images"], images[chosen])
        write_idx(directory / IDX_FILE_NAMES[f"{split}_labels"], digits[chosen])
    return ExportedCounts(train=int(np.count_nonzero(~test)), test=int(np.count_nonzero(test)))
