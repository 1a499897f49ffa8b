"""The database: engine set-up, migrations, and keyword-only repository functions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, event, func, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ai1net.server.migrations import HEAD_REVISION
from ai1net.server.tables import ChangeRow, KeyRow, ModelRow

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Stored times are naive UTC (SQLite keeps no zone); give them their zone back."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def async_url(url: str) -> str:
    """Map the user's URL to the async driver: sqlite → aiosqlite, postgresql → asyncpg."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


BUSY_TIMEOUT_MS = 5000


class Database:
    """Owns the async engine; sessions come from :meth:`session`."""

    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        options: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if not self.is_sqlite:
            options.update(pool_size=5, max_overflow=10)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        self._writer: Engine | None = None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            # One connection kept open for the ledger's batches (the ledger's lock makes
            # its writes one at a time).
            self._writer = create_engine(url.replace("+aiosqlite", ""), poolclass=StaticPool,
                                         connect_args={"check_same_thread": False})
            event.listen(self._writer, "connect", _sqlite_pragmas)

    def write_sync(self, work: Callable[[Connection], None], *, wait: bool) -> None:
        """Run ``work`` in one transaction in the calling thread (SQLite's batch writer);
        what it raises rolls the transaction back. Without ``wait``, a database locked by
        another writer raises OperationalError at once instead of waiting (for calls from
        the event loop)."""
        assert self._writer is not None
        with self._writer.begin() as conn:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS if wait else 0}")
            work(conn)

    def session(self) -> AsyncSession:
        return AsyncSession(self.engine, expire_on_commit=False)

    async def migrate(self) -> None:
        if await self.schema_version() == HEAD_REVISION:
            return  # up to date: skip loading Alembic (half a second of start-up)
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                # Replicas starting together take turns at the schema.
                await conn.execute(text("SELECT pg_advisory_xact_lock(7240142)"))
            elif await conn.run_sync(_is_empty):
                # A new SQLite file: build the head schema and stamp it, as Alembic's
                # "database from scratch" recipe does (every migration since 0001 only
                # touches PostgreSQL), without loading Alembic.
                await conn.run_sync(_create_and_stamp)
                return
            await conn.run_sync(_upgrade)

    async def schema_version(self) -> str | None:
        try:
            async with self.engine.connect() as conn:
                result = await conn.execute(text("SELECT version_num FROM alembic_version"))
                return result.scalar_one_or_none()
        except DBAPIError:
            return None

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
        if self._writer is not None:
            self._writer.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _is_empty(connection: Connection) -> bool:
    return not inspect(connection).get_table_names()


def _create_and_stamp(connection: Connection) -> None:
    SQLModel.metadata.create_all(connection)
    connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL "
                            "CONSTRAINT alembic_version_pkc PRIMARY KEY)"))
    connection.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": HEAD_REVISION})


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


# -- keys -------------------------------------------------------------------------------


async def live_keys(*, session: AsyncSession) -> Sequence[KeyRow]:
    result = await session.exec(select(KeyRow).where(KeyRow.revoked_at == None))  # noqa: E711
    return result.all()


async def get_key(*, session: AsyncSession, key_id: str) -> KeyRow | None:
    return await session.get(KeyRow, key_id)


async def list_keys(*, session: AsyncSession, include_revoked: bool) -> Sequence[KeyRow]:
    # sqlmodel types the class attributes as their values, not as columns.
    query = select(KeyRow).order_by(KeyRow.created_at, KeyRow.id)  # type: ignore[arg-type]
    if not include_revoked:
        query = query.where(KeyRow.revoked_at == None)  # noqa: E711
    return (await session.exec(query)).all()


async def insert_key_once(*, session: AsyncSession, row: KeyRow) -> bool:
    """Insert ``row`` unless a key with its hash exists (whether it was): replicas starting
    together with the same AI1NET_ADMIN_KEY all succeed, and one row is stored."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = KeyRow.__table__  # type: ignore[attr-defined]  # set by SQLModel, undeclared
    statement = dialect.insert(table).values(row.model_dump())
    connection = await session.connection()
    result = await connection.execute(
        statement.on_conflict_do_nothing(index_elements=["key_hash"]))
    return bool(result.rowcount)


async def key_by_hash(*, session: AsyncSession, key_hash: str) -> KeyRow | None:
    result = await session.exec(select(KeyRow).where(KeyRow.key_hash == key_hash))
    return result.first()


# -- models -----------------------------------------------------------------------------


async def live_models(*, session: AsyncSession) -> Sequence[ModelRow]:
    result = await session.exec(select(ModelRow).where(ModelRow.deleted_at == None))  # noqa: E711
    return result.all()


async def live_model(*, session: AsyncSession, name: str) -> ModelRow | None:
    query = select(ModelRow).where(ModelRow.name == name, ModelRow.deleted_at == None)  # noqa: E711
    return (await session.exec(query)).first()


# -- the change sequence ----------------------------------------------------------------

# Held by each transaction that records a change, from its sequence number to its commit,
# so that PostgreSQL commits changes in sequence order: a reader that has seen number n
# never meets a number below n later. (SQLite has one writer at a time anyway.)
_CHANGE_LOCK = 7240143


async def record_change(*, session: AsyncSession, kind: str, item_id: str) -> None:
    """Add "this key/model changed" to the transaction about to commit."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await connection.execute(text(f"SELECT pg_advisory_xact_lock({_CHANGE_LOCK})"))
    session.add(ChangeRow(kind=kind, item_id=item_id, at=utcnow()))


async def changes_after(*, session: AsyncSession, seq: int, limit: int = 1000,
                        ) -> Sequence[ChangeRow]:
    query = select(ChangeRow).where(ChangeRow.seq > seq)  # type: ignore[operator]
    return (await session.exec(query.order_by(ChangeRow.seq).limit(limit))).all()  # type: ignore[arg-type]


async def last_change(*, session: AsyncSession) -> int:
    return (await session.exec(select(func.coalesce(func.max(ChangeRow.seq), 0)))).one() or 0


async def prune_changes(*, session: AsyncSession, before: datetime) -> None:
    await session.exec(delete(ChangeRow).where(ChangeRow.at < before))  # type: ignore[arg-type]
    await session.commit()
