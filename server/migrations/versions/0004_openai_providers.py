"""models speaking OpenAI's wire format: the api and the upstream model name

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 12:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("api", sa.String(length=16), nullable=False,
                                   server_default="ai1net"))
        batch.add_column(sa.Column("upstream_model", sa.String(length=200), nullable=False,
                                   server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("upstream_model")
        batch.drop_column("api")
