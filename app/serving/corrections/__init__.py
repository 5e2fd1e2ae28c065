"""Corrections people make on the page: stored safely, counted, exported for training.

This module holds what the routes need without the database libraries: SQLAlchemy and
Alembic take half a second to import, which the first correction of a process pays (see
app.serving.dependencies.get_store), not every start of the server.
"""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class NewCorrection:
    """A correction to store: what a person said a digit is, and what the model made of it."""

    created_at: datetime
    label: int
    model_input: bytes  # 784 bytes: the server's own 28x28 input, 8 bits a pixel
    model_digit: int
    probabilities: list[float]
    model_sha256: str
    claimed_prediction: int | None = None
    pointer_type: str | None = None
    canvas_width: int | None = None
    canvas_height: int | None = None
    image: bytes | None = None


@dataclass(frozen=True)
class CorrectionStats:
    total: int
    per_label: list[int]  # how many corrections say each digit
    by_served_model: int  # of them, answered by the model served now
    served_model_right: int  # of those, how many it had right


class StoreUnavailableError(Exception):
    """The store cannot take a correction now: full, read-only, or unreachable (503)."""
