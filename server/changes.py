"""Cache coherence across replicas: what one replica changes, the others reload.

Each change (a key created, updated or revoked; a model registered, updated or
deleted) is published on a Redis channel; every other replica reloads that one row
from the shared database. Without Redis there is one replica and nothing to tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub

log = logging.getLogger(__name__)

CHANNEL = "ai1net:changes"
Reload = Callable[[str], Awaitable[None]]


class ChangeFeed:
    def __init__(self, *, redis_url: str | None) -> None:
        self._redis: Any = _connect(redis_url) if redis_url else None
        self._origin = secrets.token_hex(8)
        self._reloaders: dict[str, Reload] = {}
        self._task: asyncio.Task[None] | None = None

    def on(self, kind: str, reload: Reload) -> None:
        self._reloaders[kind] = reload

    async def start(self) -> None:
        if self._redis is None:
            return
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        self._task = asyncio.create_task(self._listen(pubsub), name="ai1net-change-feed")

    async def publish(self, kind: str, item_id: str) -> None:
        if self._redis is None:
            return
        message = orjson.dumps({"kind": kind, "id": item_id, "origin": self._origin})
        try:
            await self._redis.publish(CHANNEL, message)
        except Exception:  # the change is stored; replicas reload on restart at worst
            log.warning("could not publish a %s change to Redis", kind, exc_info=True)

    async def _listen(self, pubsub: PubSub) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            change = orjson.loads(message["data"])
            reload = self._reloaders.get(change.get("kind"))
            if reload is None or change.get("origin") == self._origin:
                continue
            try:
                await reload(change["id"])
            except Exception:
                log.exception("could not reload %s %s", change.get("kind"), change.get("id"))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._redis is not None:
            await self._redis.aclose()


def _connect(url: str) -> Any:
    import redis.asyncio  # only replicas need it: a fifth of a second of start-up

    return redis.asyncio.from_url(url)
