"""Per-key rate limits and budgets: admit a call before it is forwarded, settle it after.

Rate limits are token buckets (capacity = the per-minute limit, refilled at limit/60 per
second): a key may burst its whole minute at once, then gets limit/60 a second. A bucket's
level is kept in 1/60,000,000ths of a unit, so a refill over whole microseconds is an exact
integer; nothing drifts. A call that asks for more tokens than a whole minute's limit is let
through when the bucket is full and leaves it in debt, rather than being refused for ever.

Budgets: a call is admitted only if ``spent + reserved + reserve ≤ budget``, where
``reserve`` is the call's worst-case cost; settling replaces the reservation by the real
cost. Whatever the concurrency, spent can pass the budget only by what calls cost beyond
their reservations, which happens only when a provider bills more tokens than
``max_tokens`` (or than the default the reservation assumed). ``spent`` starts from the
database's sum of the key's usage events, so it survives restarts. It is kept only while a
key has a budget: call :meth:`Quota.forget` when a key's budget is added or removed so it
is rebuilt from the database on next use.

:class:`LocalQuota` (here) serves one process: each ``--workers`` process has its own
limits. ``quota_redis.RedisQuota`` makes limits and budgets global across replicas with one
Lua script per admit and one per settle; ``quota_failover.FailoverQuota`` wraps it with
per-process shares while Redis is away. :func:`build_quota` picks one.

Over a rate limit: :class:`KeyRateLimited` (a ``RateLimited`` carrying the x-ratelimit-*
values); over budget: ``BudgetExceeded``; the store unreachable: ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from ai1net.server import rollups
from ai1net.server.errors import BudgetExceeded, GatewayError, RateLimited, Unavailable
from ai1net.server.keys import Principal
from ai1net.server.storage import Database

__all__ = ["Admission", "KeyRateLimited", "LocalQuota", "Quota", "RateLimits", "SpentLoader",
           "Window", "build_quota", "spent_by_key"]

UNIT = 60_000_000  # one request or token, in bucket units: refill = limit units per µs
SpentLoader = Callable[[str], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Window:
    """One limit as the x-ratelimit-* headers show it."""

    limit: int
    remaining: int
    reset_s: int  # whole seconds until the bucket is full again


@dataclass(frozen=True, slots=True)
class RateLimits:
    requests: Window | None = None  # None: the key has no such limit
    tokens: Window | None = None

    def headers(self) -> dict[str, str]:
        """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``; reset in seconds."""
        out: dict[str, str] = {}
        for name, window in (("requests", self.requests), ("tokens", self.tokens)):
            if window is not None:
                out[f"x-ratelimit-limit-{name}"] = str(window.limit)
                out[f"x-ratelimit-remaining-{name}"] = str(window.remaining)
                out[f"x-ratelimit-reset-{name}"] = str(window.reset_s)
        return out


@dataclass(slots=True)
class Admission:
    """What one admitted call took; hand it back to :meth:`Quota.settle` exactly once."""

    key_id: str
    tokens: int  # taken from tokens-per-minute (0 when the key has no token limit)
    nanos: int  # reserved against the budget (0 when the key has no budget)
    limits: RateLimits = field(default_factory=RateLimits)
    tokens_per_minute: int = 0
    budgeted: bool = False
    hold: str = ""  # the reservation's id
    settled: bool = False
    local: bool = False  # admitted by this process alone (Redis away): settled here

    def headers(self) -> dict[str, str]:
        return self.limits.headers()


class KeyRateLimited(RateLimited):
    """Over the key's own limit; the 429 carries the key's x-ratelimit-* values.

    They travel as ErrorInfo metadata so the bridge can turn them into headers.
    """

    def __init__(self, message: str, *, retry_after_s: float, limits: RateLimits) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.limits = limits

    def metadata(self) -> dict[str, str]:
        return {**super().metadata(), **self.limits.headers()}


class Quota(Protocol):
    async def start(self) -> None:
        """Begin background work (heartbeats); before the first call."""
        ...

    async def admit(self, key: Principal, *, reserve_tokens: int,
                    reserve_nanos: int) -> Admission:
        """Take one request and ``reserve_tokens``, reserve ``reserve_nanos``, or raise."""
        ...

    async def settle(self, admission: Admission, *, tokens: int, cost_nanos: int) -> None:
        """Turn the reservation into the real use (zero on failure); safe in ``finally``."""
        ...

    async def spent_nanos(self, key_id: str) -> int: ...

    async def forget(self, key_id: str) -> None:
        """Drop the key's budget state; the next admit rebuilds it from the database."""
        ...

    async def close(self) -> None: ...


def build_quota(redis_url: str | None, *, load_spent: SpentLoader) -> Quota:
    if not redis_url:
        return LocalQuota(load_spent=load_spent)
    # Imported here: a single-replica gateway never loads the Redis client.
    from ai1net.server.quota_failover import FailoverQuota
    from ai1net.server.quota_redis import RedisQuota

    return FailoverQuota(RedisQuota.from_url(redis_url, load_spent=load_spent),
                         load_spent=load_spent)


async def spent_by_key(db: Database, key_id: str) -> int:
    """Everything the key has been billed, from the ledger's roll-ups (nano-dollars)."""
    async with db.engine.connect() as conn:
        return await rollups.spent_nanos(conn, key_id)


# -- shared with quota_redis: bucket arithmetic and the errors ------------------------------


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _wait_us(level: int, amount: int, limit: int) -> int:
    """Microseconds until the bucket holds ``amount`` (or is full, if that is less)."""
    return max(0, _ceil_div(min(amount, limit) * UNIT - level, limit))


def window_of(limit: int, remaining: int, reset_us: int) -> Window:
    return Window(limit=limit, remaining=max(0, remaining), reset_s=_ceil_div(reset_us, 10**6))


def _retry_after_s(wait_us: int) -> int:
    return max(1, _ceil_div(wait_us, 10**6))


def check_amounts(reserve_tokens: int, reserve_nanos: int) -> None:
    if reserve_tokens < 0 or reserve_nanos < 0:
        raise ValueError("reservations must be ≥ 0")


def _usd(nanos: int) -> str:
    return f"${Decimal(nanos).scaleb(-9).normalize():f}"


def rate_limited_error(limits: RateLimits, wait_us: int, reserve_tokens: int) -> KeyRateLimited:
    over = []
    if limits.requests is not None and limits.requests.remaining < 1:
        over.append(f"{limits.requests.limit} requests per minute")
    if limits.tokens is not None and \
            limits.tokens.remaining < min(reserve_tokens, limits.tokens.limit):
        over.append(f"{limits.tokens.limit} tokens per minute")
    return KeyRateLimited(f"rate limit exceeded: {' and '.join(over)}",
                          retry_after_s=_retry_after_s(wait_us), limits=limits)


def over_budget_error(budget: int, spent: int, reserved: int, reserve: int) -> BudgetExceeded:
    return BudgetExceeded(f"budget of {_usd(budget)} exhausted: {_usd(spent)} spent, "
                          f"{_usd(reserved)} held by calls in flight, this call may cost up "
                          f"to {_usd(reserve)}")


# -- in-process -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Bucket:
    level: int  # in UNITs; negative when in debt
    at_us: int

    def refill(self, limit: int, now_us: int) -> None:
        gained = max(0, now_us - self.at_us) * limit
        self.level = min(limit * UNIT, self.level + gained)
        self.at_us = now_us

    def window(self, limit: int) -> Window:
        return window_of(limit, self.level // UNIT, _ceil_div(limit * UNIT - self.level, limit))


@dataclass(slots=True)
class _Budget:
    spent: int
    reserved: int = 0
    holds: dict[str, int] = field(default_factory=dict)


class LocalQuota:
    """Limits and budgets in this process: check and take happen with no await between."""

    def __init__(self, *, load_spent: SpentLoader,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._load_spent = load_spent
        self._clock = clock
        self._requests: dict[str, _Bucket] = {}
        self._tokens: dict[str, _Bucket] = {}
        self._budgets: dict[str, _Budget] = {}
        self._loading: dict[str, asyncio.Task[int]] = {}
        self._hold_ids = itertools.count()

    async def admit(self, key: Principal, *, reserve_tokens: int,
                    reserve_nanos: int) -> Admission:
        check_amounts(reserve_tokens, reserve_nanos)
        budget = None if key.budget_nanos is None else await self._budget(key.id)
        now = self._clock() // 1000
        requests = self._bucket(self._requests, key.id, key.requests_per_minute, now)
        tokens = self._bucket(self._tokens, key.id, key.tokens_per_minute, now)
        if budget is not None and key.budget_nanos is not None and \
                budget.spent + budget.reserved + reserve_nanos > key.budget_nanos:
            raise over_budget_error(key.budget_nanos, budget.spent, budget.reserved, reserve_nanos)
        wait = max(_wait_us(requests.level, 1, key.requests_per_minute) if requests else 0,
                   _wait_us(tokens.level, reserve_tokens, key.tokens_per_minute)
                   if tokens else 0)
        if wait:
            raise rate_limited_error(self._limits(key, requests, tokens), wait, reserve_tokens)
        return self._take(key, requests, tokens, budget, reserve_tokens, reserve_nanos)

    async def settle(self, admission: Admission, *, tokens: int, cost_nanos: int) -> None:
        # No await in here: a cancelled caller's ``finally`` cannot be interrupted.
        if admission.settled:
            return
        admission.settled = True
        bucket = self._tokens.get(admission.key_id)
        if admission.tokens_per_minute and bucket is not None:
            bucket.refill(admission.tokens_per_minute, self._clock() // 1000)
            bucket.level = min(admission.tokens_per_minute * UNIT,
                               bucket.level + (admission.tokens - tokens) * UNIT)
        budget = self._budgets.get(admission.key_id)
        if admission.budgeted and budget is not None:
            budget.reserved -= budget.holds.pop(admission.hold, 0)
            budget.spent += cost_nanos

    async def spent_nanos(self, key_id: str) -> int:
        budget = self._budgets.get(key_id)
        return budget.spent if budget is not None else await loaded_spent(self._load_spent(key_id))

    async def forget(self, key_id: str) -> None:
        self._budgets.pop(key_id, None)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for task in list(self._loading.values()):
            task.cancel()

    def _bucket(self, buckets: dict[str, _Bucket], key_id: str, limit: int,
                now: int) -> _Bucket | None:
        if not limit:
            return None
        bucket = buckets.get(key_id)
        if bucket is None:
            bucket = buckets[key_id] = _Bucket(level=limit * UNIT, at_us=now)
        bucket.refill(limit, now)
        return bucket

    def _take(self, key: Principal, requests: _Bucket | None, tokens: _Bucket | None,
              budget: _Budget | None, reserve_tokens: int, reserve_nanos: int) -> Admission:
        if requests is not None:
            requests.level -= UNIT
        if tokens is not None:
            tokens.level -= reserve_tokens * UNIT
        admission = Admission(key_id=key.id, tokens=reserve_tokens if tokens else 0,
                              nanos=0, limits=self._limits(key, requests, tokens),
                              tokens_per_minute=key.tokens_per_minute,
                              budgeted=budget is not None)
        if budget is not None and reserve_nanos:
            admission.nanos, admission.hold = reserve_nanos, str(next(self._hold_ids))
            budget.holds[admission.hold] = reserve_nanos
            budget.reserved += reserve_nanos
        return admission

    @staticmethod
    def _limits(key: Principal, requests: _Bucket | None, tokens: _Bucket | None) -> RateLimits:
        return RateLimits(
            requests=requests.window(key.requests_per_minute) if requests else None,
            tokens=tokens.window(key.tokens_per_minute) if tokens else None)

    async def _budget(self, key_id: str) -> _Budget:
        """The key's budget state, loaded from the database once however many callers wait."""
        budget = self._budgets.get(key_id)
        if budget is not None:
            return budget
        task = self._loading.get(key_id)
        if task is None:
            task = self._loading[key_id] = asyncio.ensure_future(self._load_spent(key_id))
            task.add_done_callback(lambda _: self._loading.pop(key_id, None))
        spent = await loaded_spent(asyncio.shield(task))
        return self._budgets.setdefault(key_id, _Budget(spent=spent))


async def loaded_spent(load: Awaitable[int]) -> int:
    try:
        return await load
    except (GatewayError, asyncio.CancelledError):
        raise
    except Exception as exc:
        raise Unavailable("could not load the key's spend from the database") from exc
