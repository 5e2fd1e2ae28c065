"""The corrections table.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("label", sa.SmallInteger(), nullable=False),
        sa.Column("model_input", sa.LargeBinary(), nullable=False),
        sa.Column("model_digit", sa.SmallInteger(), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.Column("claimed_prediction", sa.SmallInteger(), nullable=True),
        sa.Column("pointer_type", sa.String(length=8), nullable=True),
        sa.Column("canvas_width", sa.Integer(), nullable=True),
        sa.Column("canvas_height", sa.Integer(), nullable=True),
        sa.Column("image", sa.LargeBinary(), nullable=True),
    )
    op.create_index("ix_corrections_model_sha256", "corrections", ["model_sha256"])


def downgrade() -> None:
    op.drop_index("ix_corrections_model_sha256", table_name="corrections")
    op.drop_table("corrections")
