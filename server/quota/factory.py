"""Which quota store a gateway uses, and where a key's spend comes from."""

from __future__ import annotations

from ai1net.server import rollups
from ai1net.server.quota.core import Quota, SpentLoader
from ai1net.server.quota.local import LocalQuota
from ai1net.server.storage import Database

__all__ = ["build_quota", "spent_by_key"]


def build_quota(redis_url: str | None, *, load_spent: SpentLoader) -> Quota:
    if not redis_url:
        return LocalQuota(load_spent=load_spent)
    # Imported here: a single-replica gateway never loads the Redis client.
    from ai1net.server.quota.failover import FailoverQuota
    from ai1net.server.quota.redis_store import RedisQuota

    return FailoverQuota(RedisQuota.from_url(redis_url, load_spent=load_spent),
                         load_spent=load_spent)


async def spent_by_key(db: Database, key_id: str) -> int:
    """Everything the key has been billed, from the ledger's roll-ups (nano-dollars)."""
    async with db.engine.connect() as conn:
        return await rollups.spent_nanos(conn, key_id)
