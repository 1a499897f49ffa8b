"""server/keys.py: the KeyStore on a real SQLite file — creation, the cache, updates,
revocation, and the bounds of what a key may hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ai1net.server.crypto import KEY_PREFIX
from ai1net.server.errors import InvalidArgument, NotFound, Unauthenticated
from ai1net.server.keys import (
    KEEP,
    KeyLimits,
    KeyStore,
    Principal,
    usd_to_nanos,
)
from ai1net.server.storage import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'keys.db'}")
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
async def store(db: Database) -> KeyStore:
    keys = KeyStore(db=db)
    await keys.load()
    return keys


class Notes:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def __call__(self, kind: str, item_id: str) -> None:
        self.sent.append((kind, item_id))


async def test_a_new_key_authenticates_and_shows_eight_characters(store: KeyStore):
    principal, secret = await store.create(role="consumer", name="alice", limits=KeyLimits())
    assert secret.startswith(KEY_PREFIX) and len(secret) > 40
    assert principal.prefix == secret[:8] and len(principal.prefix) == 8
    assert store.authenticate(secret) == principal
    assert principal.role == "consumer" and not principal.is_admin
    listed = await store.list()
    assert [k.prefix for k in listed] == [secret[:8]]
    assert secret not in repr(listed)


async def test_a_second_store_on_the_same_database_sees_the_key(db: Database, store: KeyStore):
    _, secret = await store.create(role="provider", name="p", limits=KeyLimits())
    other = KeyStore(db=db)
    await other.load()
    assert other.authenticate(secret).role == "provider"


async def test_unknown_missing_and_revoked_keys_are_unauthenticated(store: KeyStore):
    principal, secret = await store.create(role="consumer", name="c", limits=KeyLimits())
    for presented in (None, ""):
        with pytest.raises(Unauthenticated, match="missing"):
            store.authenticate(presented)
    with pytest.raises(Unauthenticated, match="unknown or revoked"):
        store.authenticate(secret + "x")
    await store.revoke(principal.id)
    with pytest.raises(Unauthenticated):
        store.authenticate(secret)
    with pytest.raises(Unauthenticated):
        await store.authenticate_fresh(secret)
    assert [k.revoked for k in await store.list(include_revoked=True)] == [True]
    assert await store.list() == []


async def test_updating_or_revoking_an_unknown_or_revoked_key_is_not_found(store: KeyStore):
    principal, _ = await store.create(role="consumer", name="c", limits=KeyLimits())
    with pytest.raises(NotFound):
        await store.update("key_nope", name="x")
    with pytest.raises(NotFound):
        await store.revoke("key_nope")
    await store.revoke(principal.id)
    with pytest.raises(NotFound):
        await store.update(principal.id, name="x")
    with pytest.raises(NotFound):
        await store.revoke(principal.id)


async def test_update_changes_only_what_is_given_and_notifies(db: Database):
    notes = Notes()
    store = KeyStore(db=db, notify=notes)
    principal, secret = await store.create(
        role="consumer", name="c", limits=KeyLimits(10, 100, usd_to_nanos(5.0, "budget_usd")))
    assert principal.limited
    renamed = await store.update(principal.id, name="renamed")
    assert (renamed.name, renamed.requests_per_minute, renamed.tokens_per_minute,
            renamed.budget_nanos) == ("renamed", 10, 100, 5_000_000_000)
    limited = await store.update(principal.id, rate_limit=(0, 0), budget_nanos=KEEP)
    assert (limited.requests_per_minute, limited.tokens_per_minute) == (0, 0)
    assert limited.budget_nanos == 5_000_000_000 and limited.limited
    unbudgeted = await store.update(principal.id, budget_nanos=None)
    assert unbudgeted.budget_nanos is None and not unbudgeted.limited
    assert store.authenticate(secret).name == "renamed"  # the cache follows
    await store.revoke(principal.id)
    assert notes.sent == [("key", principal.id)] * 5


async def test_ensure_keeps_an_existing_key_and_makes_a_missing_one(store: KeyStore):
    first = await store.ensure("ai1_fixed-secret-" + "s" * 32, role="admin", name="boot")
    again = await store.ensure("ai1_fixed-secret-" + "s" * 32, role="admin", name="boot")
    assert first.id == again.id and first.is_admin
    assert len(await store.list()) == 1


@pytest.mark.parametrize(("fields", "field"), [
    ({"role": "root"}, "role"), ({"role": ""}, "role"), ({"name": "n" * 201}, "name"),
    ({"limits": KeyLimits(requests_per_minute=-1)}, "rate_limit.requests_per_minute"),
    ({"limits": KeyLimits(tokens_per_minute=2**32)}, "rate_limit.tokens_per_minute"),
])
async def test_bad_keys_are_refused_naming_the_field(store: KeyStore, fields: dict[str, object],
                                                     field: str):
    arguments: dict[str, object] = {"role": "consumer", "name": "n", "limits": KeyLimits()}
    arguments.update(fields)
    with pytest.raises(InvalidArgument) as refused:
        await store.create(**arguments)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert await store.list(include_revoked=True) == []


async def test_the_edges_of_what_a_key_may_hold_are_accepted(store: KeyStore):
    principal, _ = await store.create(role="admin", name="n" * 200,
                                      limits=KeyLimits(2**32 - 1, 0, usd_to_nanos(1e9, "b")))
    assert principal.requests_per_minute == 2**32 - 1 and principal.is_admin
    with pytest.raises(InvalidArgument, match="budget_usd"):
        usd_to_nanos(1e9 + 1, "budget_usd")
    with pytest.raises(InvalidArgument):
        await store.update(principal.id, name="n" * 201)
    with pytest.raises(InvalidArgument):
        await store.update(principal.id, rate_limit=(2**32, 0))


def test_a_principal_without_limits_is_not_limited():
    principal = Principal(id="k", name="n", role="provider", key_hash="h", prefix="p",
                          requests_per_minute=0, tokens_per_minute=0, budget_nanos=None,
                          created_at=None)  # type: ignore[arg-type]
    assert not principal.limited and not principal.is_admin
    assert "key_hash" not in repr(principal)


async def test_an_unknown_key_catches_up_on_changes_and_a_known_one_does_not(db: Database):
    caught_up: list[int] = []

    async def catch_up() -> None:  # the change feed's, which rate-limits itself
        caught_up.append(1)
        await store.load()

    store = KeyStore(db=db, catch_up=catch_up)
    await store.load()
    other = KeyStore(db=db)
    _, written = await other.create(role="consumer", name="written", limits=KeyLimits())
    assert (await store.authenticate_fresh(written)).name == "written"
    assert len(caught_up) == 1
    assert (await store.authenticate_fresh(written)).name == "written"  # known: no catch-up
    assert len(caught_up) == 1
    with pytest.raises(Unauthenticated):
        await store.authenticate_fresh("ai1_unknown")
    assert len(caught_up) == 2
