"""roll-ups of the ledger: by hour, key and model; by hour and model; by day and key —
filled from the events already stored; the events' indexes by model, key and owner dropped

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 15:30:00

From this revision on, the ledger writes each batch's roll-up deltas in the transaction
of its events (server/rollups.py). A process of an older version writes events without
them: stop every older replica before this migration runs (docs/OPERATIONS.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
DROPPED_INDEXES = {"ix_usage_model_ts": ["model", "ts_ms"], "ix_usage_key_ts": ["key_id", "ts_ms"],
                   "ix_usage_owner_ts": ["model_owner", "ts_ms"]}
SUMS = ("requests", "errors", "input_tokens", "output_tokens", "cost_nanos")


def _sums() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in SUMS]


def upgrade() -> None:
    op.create_table(
        "usage_hourly",
        sa.Column("hour_ms", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_owner", sa.String(length=40), nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint("hour_ms", "key_id", "model", "model_owner"),
        sqlite_with_rowid=False,  # the primary key is the table: one B-tree an upsert
    )
    op.create_index("ix_usage_hourly_key", "usage_hourly", ["key_id", "hour_ms"])
    op.create_table(
        "usage_hourly_models",
        sa.Column("hour_ms", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_owner", sa.String(length=40), nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint("hour_ms", "model", "model_owner"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "usage_daily_keys",
        sa.Column("day_ms", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("model_owner", sa.String(length=40), nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint("day_ms", "key_id", "model_owner"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_usage_daily_keys_key", "usage_daily_keys", ["key_id", "day_ms"])
    # The backfill: the events already stored, summed as the ledger sums each batch.
    hour = f"ts_ms / {HOUR_MS} * {HOUR_MS}"  # integer division on both databases
    sums = ("count(*), sum(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END), sum(input_tokens), "
            "sum(output_tokens), sum(cost_nanos)")
    op.execute(f"INSERT INTO usage_hourly (hour_ms, key_id, model, model_owner, "  # noqa: S608
               f"{', '.join(SUMS)}) SELECT {hour}, key_id, model, model_owner, {sums} "
               f"FROM usage_events GROUP BY {hour}, key_id, model, model_owner")
    op.execute(f"INSERT INTO usage_hourly_models (hour_ms, model, model_owner, "  # noqa: S608
               f"{', '.join(SUMS)}) SELECT hour_ms, model, model_owner, "
               f"{', '.join(f'sum({name})' for name in SUMS)} FROM usage_hourly "
               f"GROUP BY hour_ms, model, model_owner")
    day = f"hour_ms / {DAY_MS} * {DAY_MS}"
    op.execute(f"INSERT INTO usage_daily_keys (day_ms, key_id, model_owner, "  # noqa: S608
               f"{', '.join(SUMS)}) SELECT {day}, key_id, model_owner, "
               f"{', '.join(f'sum({name})' for name in SUMS)} FROM usage_hourly "
               f"GROUP BY {day}, key_id, model_owner")
    # Reports no longer read events by model, key or owner (only partial hours, by time):
    # three fewer indexes to write an event.
    for name in DROPPED_INDEXES:
        op.drop_index(name, table_name="usage_events")


def downgrade() -> None:
    for name, columns in DROPPED_INDEXES.items():
        op.create_index(name, "usage_events", columns)
    op.drop_index("ix_usage_daily_keys_key", table_name="usage_daily_keys")
    op.drop_table("usage_daily_keys")
    op.drop_table("usage_hourly_models")
    op.drop_index("ix_usage_hourly_key", table_name="usage_hourly")
    op.drop_table("usage_hourly")
