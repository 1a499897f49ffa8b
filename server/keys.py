"""API keys: who may call, cached in memory so that authenticating a call does no SQL."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from ai1net.common.ids import new_id
from ai1net.server import audit, rules, storage
from ai1net.server.crypto import hash_key, new_api_key, same_hash
from ai1net.server.errors import NotFound, Unauthenticated
from ai1net.server.money import nanos_to_usd
from ai1net.server.money import usd_to_nanos as _usd_to_nanos
from ai1net.server.storage import Database, as_utc, utcnow
from ai1net.server.tables import KeyRow

log = logging.getLogger(__name__)

ROLES = rules.ROLES
# Tells other replicas that a row changed: (kind, id).
Notify = Callable[[str, str], Awaitable[None]]
# Looks for changes not applied yet (rate-limited by whoever provides it).
CatchUp = Callable[[], Awaitable[None]]


async def _nobody(_kind: str, _item_id: str) -> None:
    return None


async def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated key, as the rest of the server sees it (never the secret)."""

    id: str
    name: str
    role: str
    key_hash: str = dataclasses.field(repr=False)
    prefix: str
    requests_per_minute: int
    tokens_per_minute: int
    budget_nanos: int | None
    created_at: datetime
    revoked: bool = False

    @property
    def limited(self) -> bool:
        """Whether a rate limit or a budget applies to the key's calls."""
        return bool(self.requests_per_minute or self.tokens_per_minute) \
            or self.budget_nanos is not None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def from_row(cls, row: KeyRow) -> Principal:
        return cls(id=row.id, name=row.name, role=row.role, key_hash=row.key_hash,
                   prefix=row.prefix, requests_per_minute=row.requests_per_minute,
                   tokens_per_minute=row.tokens_per_minute, budget_nanos=row.budget_nanos,
                   created_at=as_utc(row.created_at), revoked=row.revoked_at is not None)


class Keep:
    """Leave the field as it is (where None is a value: "no budget")."""


KEEP = Keep()


@dataclass(frozen=True, slots=True)
class KeyLimits:
    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    budget_nanos: int | None = None


def usd_to_nanos(value: float, field: str) -> int:
    rules.KEY["budget_usd"].check(field, value)
    return _usd_to_nanos(value)


def check_limits(limits: KeyLimits) -> None:
    for name in ("requests_per_minute", "tokens_per_minute"):
        path = f"rate_limit.{name}"
        rules.KEY[path].check(path, getattr(limits, name))


def _rate_limit(limits: KeyLimits) -> dict[str, int]:
    return {"requests_per_minute": limits.requests_per_minute,
            "tokens_per_minute": limits.tokens_per_minute}


def _dollars(nanos: int | None) -> float | None:
    return None if nanos is None else nanos_to_usd(nanos)


def _changed(*, name: str | None, rate_limit: dict[str, int] | None,
             budget_usd: float | Keep | None) -> dict[str, object]:
    """An update's fields as the audit keeps them: those it set (a budget of None too)."""
    changes: dict[str, object] = {"name": name, "rate_limit": rate_limit}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not isinstance(budget_usd, Keep):
        changes["budget_usd"] = budget_usd
    return changes


class KeyStore:
    """Live keys by hash; the database is only touched when keys change."""

    def __init__(self, *, db: Database, notify: Notify | None = None,
                 catch_up: CatchUp | None = None) -> None:
        self._db = db
        self._notify = notify or _nobody
        self._catch_up = catch_up or _nothing
        self._by_hash: dict[str, Principal] = {}

    async def load(self) -> None:
        async with self._db.session() as session:
            rows = await storage.live_keys(session=session)
        self._by_hash = {row.key_hash: Principal.from_row(row) for row in rows}

    def authenticate(self, presented: str | None) -> Principal:
        """The key's principal from the cache (no SQL), or Unauthenticated."""
        principal = self.lookup(presented)
        if principal is None:
            raise Unauthenticated("unknown or revoked API key")
        return principal

    def lookup(self, presented: str | None) -> Principal | None:
        if not presented:
            raise Unauthenticated("missing API key: send Authorization: Bearer <key> or x-api-key")
        digest = hash_key(presented)
        principal = self._by_hash.get(digest)
        if principal is None or not same_hash(principal.key_hash, digest):
            return None
        return principal

    async def authenticate_fresh(self, presented: str | None) -> Principal:
        """Like `authenticate`, but an unknown key first applies the changes not applied
        yet (``ChangeFeed.catch_up``, rate-limited there): a key the CLI has just written
        works at once, and unknown keys cannot make the gateway reload anything."""
        principal = self.lookup(presented)
        if principal is not None:
            return principal
        await self._catch_up()
        return self.authenticate(presented)

    async def create(self, *, role: str, name: str, limits: KeyLimits,
                     secret: str | None = None) -> tuple[Principal, str]:
        """A new key and its secret (shown to the caller this once)."""
        rules.KEY["role"].check("role", role)
        rules.KEY["name"].check("name", name)
        check_limits(limits)
        secret = secret or new_api_key()
        row = KeyRow(id=new_id("key"), name=name, role=role, key_hash=hash_key(secret),
                     prefix=secret[:8], requests_per_minute=limits.requests_per_minute,
                     tokens_per_minute=limits.tokens_per_minute,
                     budget_nanos=limits.budget_nanos, created_at=utcnow())
        async with self._db.session() as session:
            session.add(row)
            await storage.record_change(session=session, kind="key", item_id=row.id)
            audit.add(session, "key.create", row.id, {
                "role": role, "name": name, "rate_limit": _rate_limit(limits),
                "budget_usd": _dollars(limits.budget_nanos)})
            await session.commit()
        principal = Principal.from_row(row)
        self._by_hash[principal.key_hash] = principal
        await self._notify("key", principal.id)
        return principal, secret

    async def ensure(self, secret: str, *, role: str, name: str) -> Principal:
        """The key with this secret, created if missing (AI1NET_ADMIN_KEY). An upsert:
        replicas starting together store one row and all use it. A revoked key stays so."""
        digest = hash_key(secret)
        candidate = KeyRow(id=new_id("key"), name=name, role=role, key_hash=digest,
                           prefix=secret[:8], created_at=utcnow())
        async with self._db.session() as session:
            inserted = await storage.insert_key_once(session=session, row=candidate)
            if inserted:
                await storage.record_change(session=session, kind="key", item_id=candidate.id)
            await session.commit()
            row = await storage.key_by_hash(session=session, key_hash=digest)
        assert row is not None  # inserted, or already there
        if row.revoked_at is not None:
            log.warning("%s names a revoked key: it stays revoked", name)
        principal = self.refresh(row)
        if inserted:
            await self._notify("key", row.id)
        return principal

    async def list(self, *, include_revoked: bool = False) -> list[Principal]:
        async with self._db.session() as session:
            rows = await storage.list_keys(session=session, include_revoked=include_revoked)
        return [Principal.from_row(row) for row in rows]

    async def update(self, key_id: str, *, name: str | None = None,
                     rate_limit: tuple[int, int] | None = None,
                     budget_nanos: int | Keep | None = KEEP) -> Principal:
        """Change what is given (rate_limit: requests and tokens per minute; a budget of
        None removes it) on the stored row, whatever this replica's cache holds."""
        async with self._db.session() as session:
            row = await storage.get_key(session=session, key_id=key_id)
            if row is None or row.revoked_at is not None:
                raise NotFound(f"key {key_id!r} not found")
            if name is not None:
                rules.KEY["name"].check("name", name)
                row.name = name
            if rate_limit is not None:
                check_limits(KeyLimits(*rate_limit))
                row.requests_per_minute, row.tokens_per_minute = rate_limit
            if not isinstance(budget_nanos, Keep):
                row.budget_nanos = budget_nanos
            session.add(row)
            await storage.record_change(session=session, kind="key", item_id=key_id)
            audit.add(session, "key.update", key_id, _changed(
                name=name, rate_limit=_rate_limit(KeyLimits(*rate_limit)) if rate_limit else None,
                budget_usd=KEEP if isinstance(budget_nanos, Keep) else _dollars(budget_nanos)))
            await session.commit()
        await self._notify("key", key_id)
        return self.refresh(row)

    async def revoke(self, key_id: str) -> None:
        async with self._db.session() as session:
            row = await storage.get_key(session=session, key_id=key_id)
            if row is None or row.revoked_at is not None:
                raise NotFound(f"key {key_id!r} not found")
            row.revoked_at = utcnow()
            session.add(row)
            await storage.record_change(session=session, kind="key", item_id=key_id)
            audit.add(session, "key.revoke", key_id)
            await session.commit()
        self.refresh(row)
        await self._notify("key", key_id)

    def refresh(self, row: KeyRow) -> Principal:
        """Bring the cache in line with a row written here or by another replica."""
        principal = Principal.from_row(row)
        if principal.revoked:
            self._by_hash.pop(principal.key_hash, None)
        else:
            self._by_hash[principal.key_hash] = principal
        return principal

    async def reload_one(self, key_id: str) -> None:
        async with self._db.session() as session:
            row = await storage.get_key(session=session, key_id=key_id)
        if row is not None:
            self.refresh(row)
