"""SQLModel tables. Money is integer nano-dollars (10^-9 USD); API schemas live elsewhere."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DDL, JSON, BigInteger, Column, Index, Integer, Text, event, text
from sqlmodel import Field, SQLModel


class KeyRow(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(default="", max_length=200)
    role: str = Field(max_length=16)
    # SHA-256 of the key: keys are 256-bit random, so a fast hash is enough.
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    requests_per_minute: int = Field(default=0, sa_type=BigInteger)
    tokens_per_minute: int = Field(default=0, sa_type=BigInteger)
    budget_nanos: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime
    revoked_at: datetime | None = None


class ModelRow(SQLModel, table=True):
    __tablename__ = "models"
    __table_args__ = (
        # A name is unique among live models; a deleted model's name may be reused.
        Index("ux_models_live_name", "name", unique=True,
              sqlite_where=text("deleted_at IS NULL"),
              postgresql_where=text("deleted_at IS NULL")),
        Index("ix_models_owner", "owner"),
    )

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    owner: str = Field(max_length=40)
    type: str = Field(max_length=16)
    endpoint: str = Field(sa_type=Text)
    auth_type: str = Field(max_length=16)
    # Fernet token of the JSON credentials; never leaves the server in clear.
    credentials_encrypted: str | None = Field(default=None, sa_type=Text)
    input_price_nanos: int = Field(default=0, sa_type=BigInteger)  # per 1k tokens
    output_price_nanos: int = Field(default=0, sa_type=BigInteger)  # per 1k tokens
    request_price_nanos: int = Field(default=0, sa_type=BigInteger)  # per successful call
    capabilities: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    specialties: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    avg_latency_ms: float = 0.0
    accuracy_score: float = 0.0
    cost_efficiency: str = Field(default="medium", max_length=16)
    timeout_ms: int = 60_000
    first_byte_timeout_ms: int = 30_000
    max_response_bytes: int = 16 << 20
    max_event_bytes: int = 1 << 20
    max_concurrency: int = 256
    # The wire protocol: "ai1net" (CONTRACT §3's POST) or "openai" (chat completions).
    api: str = Field(default="ai1net", max_length=16)
    upstream_model: str = Field(default="", max_length=200)
    health_url: str = Field(default="", max_length=2048)
    # The last conformance check: when, whether it passed, its summary.
    verified_at: datetime | None = None
    verification_passed: bool = False
    verification_summary: str = Field(default="", sa_type=Text)
    description: str = Field(default="", sa_type=Text)
    enabled: bool = True
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class UsageEventRow(SQLModel, table=True):
    __tablename__ = "usage_events"
    __table_args__ = (
        # Reports read the roll-ups and, for the partial hours at their edges, an hour of
        # events at most: by time alone (the indexes by model, key and owner are gone since
        # schema 0011, three fewer B-trees to write an event).
        Index("ix_usage_ts", "ts_ms"),
    )

    # Made by the gateway when the call ends: writing it twice is a no-op.
    id: str = Field(primary_key=True, max_length=40)
    ts_ms: int = Field(sa_type=BigInteger)  # Unix epoch milliseconds
    key_id: str = Field(max_length=40)
    model: str = Field(max_length=200)
    model_owner: str = Field(max_length=40)
    input_tokens: int = Field(default=0, sa_type=BigInteger)
    output_tokens: int = Field(default=0, sa_type=BigInteger)
    estimated: bool = False
    cost_nanos: int = Field(default=0, sa_type=BigInteger)
    latency_ms: int = 0
    ttft_ms: int = 0
    outcome: str = Field(max_length=32)  # ok | error | cancelled | timeout
    error_type: str = Field(default="", max_length=64)


class UsageHourRow(SQLModel, table=True):
    """The ledger rolled up by hour, key and model (``server/rollups.py``): written in the
    transaction that writes the events it counts, so it always equals their sums.

    The three roll-up tables spell out their five sums each: a base class holding them would
    put them first in the tables ``Database.migrate`` creates afresh, unlike the migration."""

    __tablename__ = "usage_hourly"
    # WITHOUT ROWID on SQLite: the primary key is the table (one B-tree an upsert, not two).
    __table_args__ = (Index("ix_usage_hourly_key", "key_id", "hour_ms"),
                      {"sqlite_with_rowid": False})

    hour_ms: int = Field(primary_key=True, sa_type=BigInteger)  # the hour's first ms
    key_id: str = Field(primary_key=True, max_length=40)
    model: str = Field(primary_key=True, max_length=200)
    model_owner: str = Field(primary_key=True, max_length=40)
    requests: int = Field(default=0, sa_type=BigInteger)
    errors: int = Field(default=0, sa_type=BigInteger)  # outcome other than "ok"
    input_tokens: int = Field(default=0, sa_type=BigInteger)
    output_tokens: int = Field(default=0, sa_type=BigInteger)
    cost_nanos: int = Field(default=0, sa_type=BigInteger)


class UsageHourModelRow(SQLModel, table=True):
    """The same roll-up without the key: what admins' and providers' reports read (a
    busy marketplace has many keys, and few models)."""

    __tablename__ = "usage_hourly_models"
    __table_args__ = {"sqlite_with_rowid": False}

    hour_ms: int = Field(primary_key=True, sa_type=BigInteger)
    model: str = Field(primary_key=True, max_length=200)
    model_owner: str = Field(primary_key=True, max_length=40)
    requests: int = Field(default=0, sa_type=BigInteger)
    errors: int = Field(default=0, sa_type=BigInteger)
    input_tokens: int = Field(default=0, sa_type=BigInteger)
    output_tokens: int = Field(default=0, sa_type=BigInteger)
    cost_nanos: int = Field(default=0, sa_type=BigInteger)


class UsageDayKeyRow(SQLModel, table=True):
    """The roll-up by day and key alone (with the owner, for providers' views): what reports
    by key read over whole days, where the hourly one holds a row per hour and model."""

    __tablename__ = "usage_daily_keys"
    # By key: a consumer's reports and a key's spend (a new entry once a day and key).
    __table_args__ = (Index("ix_usage_daily_keys_key", "key_id", "day_ms"),
                      {"sqlite_with_rowid": False})

    day_ms: int = Field(primary_key=True, sa_type=BigInteger)  # the UTC day's first ms
    key_id: str = Field(primary_key=True, max_length=40)
    model_owner: str = Field(primary_key=True, max_length=40)
    requests: int = Field(default=0, sa_type=BigInteger)
    errors: int = Field(default=0, sa_type=BigInteger)
    input_tokens: int = Field(default=0, sa_type=BigInteger)
    output_tokens: int = Field(default=0, sa_type=BigInteger)
    cost_nanos: int = Field(default=0, sa_type=BigInteger)


class UsageReportRow(SQLModel, table=True):
    __tablename__ = "usage_reports"
    __table_args__ = (Index("ix_reports_model_period", "model", "from_ms", "to_ms"),)

    id: str = Field(primary_key=True, max_length=40)
    model: str = Field(max_length=200)
    owner: str = Field(max_length=40)
    from_ms: int = Field(sa_type=BigInteger)
    to_ms: int = Field(sa_type=BigInteger)
    requests: int = Field(default=0, sa_type=BigInteger)
    tokens_processed: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime


class ChangeRow(SQLModel, table=True):
    """One key or model change, in commit order: every process applies the rows past the
    last one it saw (``server/changes.py``), whoever wrote them (a replica, the CLI)."""

    __tablename__ = "changes"
    # AUTOINCREMENT on SQLite: a number is never reused, even after pruning the newest rows.
    __table_args__ = {"sqlite_autoincrement": True}

    seq: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True))
    kind: str = Field(max_length=16)  # key | model | feedback
    item_id: str = Field(max_length=40)
    at: datetime


class AuditEventRow(SQLModel, table=True):
    """Who changed what: appended, never updated or deleted (triggers refuse both)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_actor", "actor_key_id", "id"),
        Index("ix_audit_action", "action", "id"),
    )

    # Time-ordered (common.ids.new_id): pages follow the primary key.
    id: str = Field(primary_key=True, max_length=40)
    at: datetime
    actor_key_id: str = Field(max_length=40)
    action: str = Field(max_length=40)
    target: str = Field(max_length=200)
    request_id: str = Field(default="", max_length=64)
    # What changed, as the API names it; never a credential or a key.
    changes: dict[str, Any] = Field(default_factory=dict,
                                    sa_column=Column(JSON, nullable=False))


# The statements that make audit_events append-only, per dialect (the migration runs them
# too, so a new SQLite file and a migrated database refuse alike).
APPEND_ONLY = {
    "sqlite": [f"CREATE TRIGGER IF NOT EXISTS audit_events_no_{verb.lower()} BEFORE {verb} "
               f"ON audit_events BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
               for verb in ("UPDATE", "DELETE")],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$",
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()",
    ],
}
# SQLAlchemy's way to make create_all run them: a listener on the table.
for _dialect, _statements in APPEND_ONLY.items():
    for _statement in _statements:
        _ddl = DDL(_statement).execute_if(dialect=_dialect)  # type: ignore[no-untyped-call]
        event.listen(AuditEventRow.__table__, "after_create", _ddl)  # type: ignore[attr-defined]


class FeedbackRow(SQLModel, table=True):
    """One rating of one generation, by the key that made the call (or an admin)."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_model", "model"),)

    generation_id: str = Field(primary_key=True, max_length=40)  # one rating each
    model: str = Field(max_length=200)
    key_id: str = Field(max_length=40)  # who rated
    score: float
    comment: str = Field(default="", sa_type=Text)
    created_at: datetime
