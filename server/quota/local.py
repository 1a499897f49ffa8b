"""The in-process quota: one process's token buckets and budgets."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ai1net.server.keys import Principal
from ai1net.server.quota.core import (
    UNIT,
    Admission,
    RateLimits,
    SpentLoader,
    Window,
    ceil_div,
    check_amounts,
    loaded_spent,
    over_budget_error,
    rate_limited_error,
    wait_us,
    window_of,
)

__all__ = ["LocalQuota"]


@dataclass(slots=True)
class _Bucket:
    level: int  # in UNITs; negative when in debt
    at_us: int

    def refill(self, limit: int, now_us: int) -> None:
        gained = max(0, now_us - self.at_us) * limit
        self.level = min(limit * UNIT, self.level + gained)
        self.at_us = now_us

    def window(self, limit: int) -> Window:
        return window_of(limit, self.level // UNIT, ceil_div(limit * UNIT - self.level, limit))


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
        wait = max(wait_us(requests.level, 1, key.requests_per_minute) if requests else 0,
                   wait_us(tokens.level, reserve_tokens, key.tokens_per_minute)
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
