"""ratings of generations: one per generation, the source of each model's observed quality

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("generation_id", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("generation_id"),
    )
    op.create_index("ix_feedback_model", "feedback", ["model"])


def downgrade() -> None:
    op.drop_index("ix_feedback_model", table_name="feedback")
    op.drop_table("feedback")
