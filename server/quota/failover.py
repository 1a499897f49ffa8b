"""Limits and budgets that keep serving while Redis is away.

:class:`FailoverQuota` admits through the shared :class:`RedisQuota`. The first Redis
failure (refused, reset, timed out) switches this process to per-process shares, for that
call too, with one warning in the log and ``ai1net_quota_degraded`` at 1:

- a rate limit becomes a local token bucket of the key's limit divided by the replicas
  seen (every replica keeps itself in a Redis sorted set by heartbeat, and leaves it when
  it stops; the most replicas counted over a heartbeat's lifetime is used, so a Redis that
  restarted empty, where the others have not beaten yet, does not make a share the whole
  limit), at least 1 a minute;
- a budget becomes a local one of the key's share of what remains:
  ``spent + (budget - spent) // replicas``, ``spent`` being the ledger's sum when the key
  is first used in the outage (the database still answers).

Meanwhile Redis is probed every second. When it answers, what it missed is applied in
order — settlements that failed, and the costs of calls admitted locally, summed per key —
in one transaction (calls go on meanwhile: replaying a call a round trip, a replica under
load fell behind and kept admitting from its shares for seconds), the local state is
dropped, and calls go through Redis again (logged; the gauge back to 0). A budget Redis
lost (it restarted empty) is rebuilt at the next call from the ledger's sum, or, if the
ledger does not answer either, from the spend Redis last reported to this replica.

**Overspend during an outage, per key.** Budgets: each replica spends at most its share of
what the ledger showed as remaining, so the total stays within the budget except for the
cost of calls that were in flight, or answered but not yet written to the ledger (one
flush interval, 100 ms), when the replicas switched — plus, as always, tokens beyond a
call's reservation. Rate limits: the local buckets start full, so over the outage a key
gets at most one extra minute's limit on top of its normal rate (its limit divided among
the replicas, each bucket full once); with fewer replicas seen than running, each runs
its share faster by that ratio, and a limit below the replica count becomes 1 a minute
per replica. Both bounds are tested (``tests/integration/test_redis_outage.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable

from ai1net.server.keys import Principal
from ai1net.server.metrics import QuotaStatus
from ai1net.server.quota.core import Admission, SpentLoader
from ai1net.server.quota.local import LocalQuota
from ai1net.server.quota.redis_store import (
    Missed,
    QuotaStoreDown,
    RedisQuota,
    SettleArgs,
    settlement,
)

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0  # how often a replica says it is alive
PROBE_S = 1.0  # how often Redis is tried while it is away
REPLAY_BATCH = 1000  # what Redis missed, at most this much a transaction


class FailoverQuota:
    """Redis's shared limits while it answers, per-process shares while it does not."""

    def __init__(self, shared: RedisQuota, *, load_spent: SpentLoader,
                 heartbeat_s: float = HEARTBEAT_S, probe_s: float = PROBE_S,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._shared = shared
        self._load_spent = load_spent
        self._clock = clock
        self._heartbeat_s = heartbeat_s
        self._probe_s = probe_s
        self._member = secrets.token_hex(8)
        self._local = LocalQuota(load_spent=load_spent, clock=clock)
        self._budgets: dict[str, int] = {}  # key -> its local budget in this outage
        self._owed: list[Missed] = []  # what Redis must be told when it answers again
        # key -> the settlement in _owed that local calls' costs are still added to
        self._open_spends: dict[str, SettleArgs] = {}
        self._counts: deque[tuple[float, int]] = deque()  # (when, replicas Redis counted)
        self._task: asyncio.Task[None] | None = None
        self._recovered = asyncio.Event()
        self._down = asyncio.Event()  # set when a call finds Redis away
        shared.settle_failed = self._settle_failed
        self.degraded = False
        self.replicas = 1  # the last count Redis gave
        self.local_admissions = 0
        self.outages = 0

    async def start(self) -> None:
        with contextlib.suppress(QuotaStoreDown):
            await self.beat()
        self._task = asyncio.create_task(self._watch(), name="ai1net-quota-watch")

    async def admit(self, key: Principal, *, reserve_tokens: int,
                    reserve_nanos: int) -> Admission:
        if not self.degraded:
            try:
                return await self._shared.admit(key, reserve_tokens=reserve_tokens,
                                                reserve_nanos=reserve_nanos)
            except QuotaStoreDown:
                self._lost("admitting a call")
        admission = await self._local.admit(await self._share(key),
                                            reserve_tokens=reserve_tokens,
                                            reserve_nanos=reserve_nanos)
        admission.local = True
        self.local_admissions += 1
        return admission

    async def settle(self, admission: Admission, *, tokens: int, cost_nanos: int) -> None:
        if not admission.local and not self.degraded:
            await self._shared.settle(admission, tokens=tokens, cost_nanos=cost_nanos)
            return
        if not admission.local:  # admitted by Redis, which is away now: tell it later
            owed = settlement(admission, tokens=tokens, cost_nanos=cost_nanos)
            if owed is not None:
                self._owe(admission.key_id, owed)
            return
        await self._local.settle(admission, tokens=tokens, cost_nanos=cost_nanos)
        if not (admission.budgeted and cost_nanos):
            return
        if self.degraded:
            self._owe_spend(admission.key_id, cost_nanos)
        else:  # Redis came back while the call ran
            spend: SettleArgs = [0, 0, cost_nanos, "1", ""]
            await asyncio.shield(self._apply(admission.key_id, spend))

    async def spent_nanos(self, key_id: str) -> int:
        return await self._shared.spent_nanos(key_id)

    async def forget(self, key_id: str) -> None:
        self._budgets.pop(key_id, None)
        await self._local.forget(key_id)
        try:
            await self._shared.forget(key_id)
        except QuotaStoreDown:
            self._lost("forgetting a budget")
            self._open_spends.pop(key_id, None)
            self._owed.append((key_id, None))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self.degraded:  # away, it would only be waited for
            with contextlib.suppress(QuotaStoreDown):
                await self._shared.leave(self._member)
        await self._local.close()
        await self._shared.close()

    def status(self) -> QuotaStatus:
        return QuotaStatus(degraded=self.degraded, replicas=self.replicas,
                           local_admissions=self.local_admissions)

    async def recovered(self) -> None:
        """Wait until Redis is in use again (tests)."""
        await self._recovered.wait()

    async def beat(self) -> None:
        """Say this replica is alive (for three heartbeat periods) and count the replicas
        (the most counted over those periods); raises QuotaStoreDown."""
        lifetime = self._heartbeat_s * 3
        count = await self._shared.heartbeat(self._member, round(lifetime * 1000))
        now = time.monotonic()
        self._counts.append((now, count))
        while self._counts[0][0] < now - lifetime:
            self._counts.popleft()
        self.replicas = max(seen for _, seen in self._counts)

    async def _share(self, key: Principal) -> Principal:
        """The key as this process enforces it alone: its limits divided among replicas."""
        n = max(1, self.replicas)
        budget = key.budget_nanos
        if budget is not None:
            local = self._budgets.get(key.id)
            if local is None:
                spent = await self._local.spent_nanos(key.id)
                local = self._budgets[key.id] = spent + max(0, budget - spent) // n
            budget = local
        return dataclasses.replace(
            key, budget_nanos=budget,
            requests_per_minute=max(1, key.requests_per_minute // n)
            if key.requests_per_minute else 0,
            tokens_per_minute=max(1, key.tokens_per_minute // n)
            if key.tokens_per_minute else 0)

    async def _apply(self, key_id: str, args: SettleArgs) -> None:
        try:
            await self._shared.apply_settlement(key_id, args)
        except QuotaStoreDown:
            self._settle_failed(key_id, args)

    def _settle_failed(self, key_id: str, args: SettleArgs) -> None:
        self._lost("settling a call")
        self._owe(key_id, args)

    def _owe(self, key_id: str, args: SettleArgs) -> None:
        self._owed.append((key_id, args))

    def _owe_spend(self, key_id: str, cost_nanos: int) -> None:
        """The cost of a call Redis never saw, added to the key's open sum (no hold, no
        tokens: only the shared budget's spend)."""
        spend = self._open_spends.get(key_id)
        if spend is None:
            spend = self._open_spends[key_id] = [0, 0, 0, "1", ""]
            self._owed.append((key_id, spend))
        spend[2] = int(spend[2]) + cost_nanos

    def _lost(self, doing: str) -> None:
        if self.degraded:
            return
        self.degraded = True
        self._down.set()
        self.outages += 1
        self._recovered.clear()
        log.warning("Redis does not answer (%s): rate limits and budgets fall back to "
                    "per-process shares among %d replicas until it does", doing,
                    self.replicas)

    async def _watch(self) -> None:
        """Heartbeat while Redis answers; probe it and re-synchronise once it is back."""
        while True:
            with contextlib.suppress(TimeoutError):  # a failure seen by a call wakes it
                await asyncio.wait_for(self._down.wait(),
                                       self._probe_s if self.degraded else self._heartbeat_s)
            if self._down.is_set():
                self._down.clear()
                await asyncio.sleep(self._probe_s)
            try:
                await self.beat()
                if self.degraded:
                    await self._resync()
            except QuotaStoreDown:
                self._lost("heartbeat")

    async def _resync(self) -> None:
        """Tell Redis what it missed, then use it again. Calls go on meanwhile, so what they
        owe by then is replayed after the switch: replaying until nothing is owed would
        never end under load. Raises QuotaStoreDown if Redis fails meanwhile (the rest
        waits for the next probe)."""
        applied = await self._replay()
        self.degraded = False  # from here on a local call's cost goes straight to Redis
        self._local = LocalQuota(load_spent=self._load_spent, clock=self._clock)
        self._budgets.clear()
        applied += await self._replay()
        self._recovered.set()
        log.warning("Redis answers again: rate limits and budgets are shared again "
                    "(%d missed settlements applied)", applied)

    async def _replay(self) -> int:
        """Apply, in order, what is owed now (what is owed meanwhile is left); how much."""
        done, owed = 0, len(self._owed)
        while done < owed:
            batch = self._owed[:min(REPLAY_BATCH, owed - done)]
            for key_id, args in batch:  # sent as they are: later costs start a new sum
                if args is not None and self._open_spends.get(key_id) is args:
                    del self._open_spends[key_id]
            await self._shared.replay(batch)
            del self._owed[:len(batch)]
            done += len(batch)
        return done
