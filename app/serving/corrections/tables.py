"""The corrections table (SQLAlchemy 2); app/serving/corrections/migrations creates it."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, LargeBinary, SmallInteger, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Correction(Base):
    """One digit as a person said it is, with what the served model made of it."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    label: Mapped[int] = mapped_column(SmallInteger)  # what the person says it is
    # The 28x28 input the server computed itself (never the client's pixels), 8 bits a
    # pixel as MNIST stores its digits: 784 bytes, row by row.
    model_input: Mapped[bytes] = mapped_column(LargeBinary)
    model_digit: Mapped[int] = mapped_column(SmallInteger)  # the served model's answer
    probabilities: Mapped[list[float]] = mapped_column(JSON)
    model_sha256: Mapped[str] = mapped_column(String(64), index=True)
    claimed_prediction: Mapped[int | None] = mapped_column(SmallInteger)  # what the page showed
    pointer_type: Mapped[str | None] = mapped_column(String(8))
    canvas_width: Mapped[int | None]
    canvas_height: Mapped[int | None]
    # The uploaded image itself, only when a setting allows keeping it (off by default).
    image: Mapped[bytes | None] = mapped_column(LargeBinary)
