"""per-model limits on what a provider may send, and on its calls in flight

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 12:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = {"max_response_bytes": 16 << 20, "max_event_bytes": 1 << 20, "max_concurrency": 256}


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        for name, default in COLUMNS.items():
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False,
                                       server_default=str(default)))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
