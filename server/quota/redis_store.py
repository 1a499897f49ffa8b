"""The Redis quota: limits and budgets shared by every replica, one Lua script each way.

Per key (the braces are a cluster hash tag, so one script's keys share a slot):

    ai1net:{key_id}:rate    hash rl/rt, tl/tt: bucket levels and when they were refilled;
                            expires once both buckets are full again
    ai1net:{key_id}:budget  hash spent/reserved (nano-dollars); never expires
    ai1net:{key_id}:holds   sorted set of reservations "id:nanos" by deadline (ms)

    ai1net:replicas         sorted set of live replicas by heartbeat deadline (ms)

Time is Redis's own (``TIME``), so replicas with skewed clocks agree. The budget hash is
created from the database's sum the first time a script finds it missing (the script asks
for it; whichever replica loads it first wins). A hold past its deadline belongs to a call
whose replica died before settling it; the next admit of that key releases it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ai1net.server.errors import Unavailable
from ai1net.server.keys import Principal
from ai1net.server.quota.core import (
    Admission,
    RateLimits,
    SpentLoader,
    check_amounts,
    loaded_spent,
    over_budget_error,
    rate_limited_error,
    window_of,
)

log = logging.getLogger(__name__)

_LUA_BUCKETS = """
local UNIT = 60000000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function level(stored, at, limit)
  if not stored then return limit * UNIT end
  local gained = math.max(0, now - tonumber(at)) * limit
  return math.min(limit * UNIT, tonumber(stored) + gained)
end
local function reset_us(lvl, limit) return math.ceil((limit * UNIT - lvl) / limit) end
local function keep(ms)  -- the rate state lives until its buckets are full again
  if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
end
"""

# KEYS: rate, budget, holds. ARGV: rpm, tpm, tokens, budget (-1: none), nanos,
# spent from the database (-1: not loaded), hold member ("id:nanos" or ""), hold ttl ms.
# Reply: status (1 ok, 2 rate limited, 3 over budget, 4 load spent first), wait µs,
# requests remaining, requests reset µs, tokens remaining, tokens reset µs, spent, reserved.
_LUA_ADMIT = _LUA_BUCKETS + """
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local budget, nanos = tonumber(ARGV[4]), tonumber(ARGV[5])
local st = redis.call('HMGET', KEYS[1], 'rl', 'rt', 'tl', 'tt')
local rl = rpm > 0 and level(st[1], st[2], rpm) or 0
local tl = tpm > 0 and level(st[3], st[4], tpm) or 0
local spent, reserved = 0, 0
local function reply(status, wait)
  local out = {status, wait, 0, 0, 0, 0, spent, reserved}
  if rpm > 0 then out[3], out[4] = math.floor(rl / UNIT), reset_us(rl, rpm) end
  if tpm > 0 then out[5], out[6] = math.floor(tl / UNIT), reset_us(tl, tpm) end
  return out
end
if budget >= 0 then
  local b = redis.call('HMGET', KEYS[2], 'spent', 'reserved')
  if not b[1] then
    if tonumber(ARGV[6]) < 0 then return {4} end
    redis.call('HSET', KEYS[2], 'spent', ARGV[6], 'reserved', 0)
    b = {ARGV[6], '0'}
  end
  spent, reserved = tonumber(b[1]), tonumber(b[2])
  local now_ms = math.floor(now / 1000)
  local lost = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_ms, 'LIMIT', 0, 100)
  for _, member in ipairs(lost) do  -- holds of calls whose replica never settled them
    local amount = string.match(member, ':(%d+)$')
    redis.call('ZREM', KEYS[3], member)
    reserved = tonumber(redis.call('HINCRBY', KEYS[2], 'reserved', '-' .. amount))
  end
  if spent + reserved + nanos > budget then return reply(3, 0) end
end
local wait = 0
if rpm > 0 then wait = math.max(wait, math.ceil((UNIT - rl) / rpm)) end
if tpm > 0 then wait = math.max(wait, math.ceil((math.min(tokens, tpm) * UNIT - tl) / tpm)) end
if wait > 0 then return reply(2, wait) end
local ttl = 0
if rpm > 0 then
  rl = rl - UNIT
  redis.call('HSET', KEYS[1], 'rl', rl, 'rt', now)
  ttl = math.max(ttl, reset_us(rl, rpm))
end
if tpm > 0 then
  tl = tl - tokens * UNIT
  redis.call('HSET', KEYS[1], 'tl', tl, 'tt', now)
  ttl = math.max(ttl, reset_us(tl, tpm))
end
if ttl > 0 then keep(math.ceil(ttl / 1000) + 1000) end
if budget >= 0 and ARGV[7] ~= '' then
  reserved = tonumber(redis.call('HINCRBY', KEYS[2], 'reserved', ARGV[5]))
  redis.call('ZADD', KEYS[3], math.floor(now / 1000) + tonumber(ARGV[8]), ARGV[7])
end
return reply(1, 0)
"""

# KEYS: rate, budget, holds. ARGV: tpm, tokens to give back (negative: take more),
# cost nanos, budgeted ('1' or '0'), hold member.
_LUA_SETTLE = _LUA_BUCKETS + """
local tpm, back = tonumber(ARGV[1]), tonumber(ARGV[2])
if tpm > 0 and back ~= 0 then
  local st = redis.call('HMGET', KEYS[1], 'tl', 'tt')
  local tl = math.min(tpm * UNIT, level(st[1], st[2], tpm) + back * UNIT)
  redis.call('HSET', KEYS[1], 'tl', tl, 'tt', now)
  keep(math.ceil(reset_us(tl, tpm) / 1000) + 1000)
end
local held = ARGV[5] ~= '' and redis.call('ZREM', KEYS[3], ARGV[5]) == 1
-- A call admitted with a hold is settled once: the hold is gone after its first settlement
-- (a settlement whose reply was lost, replayed after an outage, adds nothing twice).
if ARGV[4] == '1' and (held or ARGV[5] == '') and redis.call('EXISTS', KEYS[2]) == 1 then
  if held then
    redis.call('HINCRBY', KEYS[2], 'reserved', '-' .. string.match(ARGV[5], ':(%d+)$'))
  end
  redis.call('HINCRBY', KEYS[2], 'spent', ARGV[3])
end
return 1
"""

# KEYS: replicas. ARGV: this replica's member, ttl ms. Reply: the replicas alive.
_LUA_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
"""
REPLICAS = "ai1net:replicas"

_OK, _RATE_LIMITED, _OVER_BUDGET, _LOAD_SPENT = 1, 2, 3, 4
SettleArgs = list[int | str]
SettleFailed = Callable[[str, SettleArgs], None]
# What Redis missed, replayed in order: a key's settlement, or None to drop its budget.
Missed = tuple[str, SettleArgs | None]


class QuotaStoreDown(Unavailable):
    """Redis did not answer (refused, reset, timed out)."""

    def __init__(self) -> None:
        super().__init__("the quota store (Redis) is unreachable")


def _log_lost_settlement(key_id: str, _args: SettleArgs) -> None:
    # The usage event still reaches the ledger; the hold lapses after hold_ttl_s.
    log.warning("could not settle a call of key %s in Redis", key_id, exc_info=True)


class RedisQuota:
    """Limits and budgets shared by every replica on one Redis, one script call each way."""

    def __init__(self, client: Redis, *, load_spent: SpentLoader,
                 hold_ttl_s: float = 3600.0,
                 settle_failed: SettleFailed = _log_lost_settlement) -> None:
        # hold_ttl_s must outlast the longest call (timeouts times fallbacks): a hold older
        # than that is taken for a dead replica's and released.
        self._client = client
        self._load_spent = load_spent
        self._hold_ttl_ms = max(1, round(hold_ttl_s * 1000))
        self._admit = client.register_script(_LUA_ADMIT)
        self._settle = client.register_script(_LUA_SETTLE)
        self._heartbeat = client.register_script(_LUA_HEARTBEAT)
        self._settling: set[asyncio.Task[None]] = set()
        # The spend Redis last reported per budgeted key: a floor for rebuilding a budget
        # Redis lost while the ledger does not answer.
        self._last_spent: dict[str, int] = {}
        # What to do with a settlement Redis did not take (it is passed the key and the
        # arguments for apply_settlement).
        self.settle_failed = settle_failed

    @classmethod
    def from_url(cls, url: str, *, load_spent: SpentLoader, hold_ttl_s: float = 3600.0,
                 timeout_s: float = 2.0) -> RedisQuota:
        client = Redis.from_url(url, socket_timeout=timeout_s,
                                socket_connect_timeout=timeout_s)
        return cls(client, load_spent=load_spent, hold_ttl_s=hold_ttl_s)

    async def admit(self, key: Principal, *, reserve_tokens: int,
                    reserve_nanos: int) -> Admission:
        check_amounts(reserve_tokens, reserve_nanos)
        budgeted = key.budget_nanos is not None
        if not (key.requests_per_minute or key.tokens_per_minute or budgeted):
            return Admission(key_id=key.id, tokens=0, nanos=0)
        hold = f"{secrets.token_hex(8)}:{reserve_nanos}" if budgeted and reserve_nanos else ""
        budget = -1 if key.budget_nanos is None else key.budget_nanos
        args: list[int | str] = [key.requests_per_minute, key.tokens_per_minute, reserve_tokens,
                                 budget, reserve_nanos, -1, hold, self._hold_ttl_ms]
        reply = await self._call_admit(key.id, args)
        if reply[0] == _LOAD_SPENT:
            args[5] = await self._spent_to_rebuild(key.id)
            reply = await self._call_admit(key.id, args)
        return self._admission(key, reply, reserve_tokens, reserve_nanos, hold)

    async def settle(self, admission: Admission, *, tokens: int, cost_nanos: int) -> None:
        args = settlement(admission, tokens=tokens, cost_nanos=cost_nanos)
        if args is None:
            return
        task = asyncio.ensure_future(self._call_settle(admission.key_id, args))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        await asyncio.shield(task)  # a second cancellation must not lose the settlement

    async def spent_nanos(self, key_id: str) -> int:
        try:
            spent = await self._client.hget(_keys(key_id)[1], "spent")
        except RedisError as exc:
            raise QuotaStoreDown from exc
        return int(spent) if spent is not None else await loaded_spent(self._load_spent(key_id))

    async def forget(self, key_id: str) -> None:
        self._last_spent.pop(key_id, None)
        try:
            await self._client.delete(*_keys(key_id)[1:])
        except RedisError as exc:
            raise QuotaStoreDown from exc

    async def heartbeat(self, member: str, ttl_ms: int) -> int:
        """Say this replica is alive for ``ttl_ms``; how many replicas are. Raises
        QuotaStoreDown."""
        try:
            return int(await self._heartbeat(keys=[REPLICAS], args=[member, ttl_ms]))
        except RedisError as exc:
            raise QuotaStoreDown from exc

    async def leave(self, member: str) -> None:
        """This replica is leaving: count it no more. Raises QuotaStoreDown."""
        try:
            await self._client.zrem(REPLICAS, member)
        except RedisError as exc:
            raise QuotaStoreDown from exc

    async def replay(self, missed: Sequence[Missed]) -> None:
        """Apply what Redis missed, in order, in one transaction (all or nothing: one
        round trip however much there is); raises QuotaStoreDown."""
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                for key_id, args in missed:
                    if args is None:
                        pipe.delete(*_keys(key_id)[1:])
                    else:
                        await self._settle(keys=_keys(key_id), args=args, client=pipe)
                await pipe.execute()
        except RedisError as exc:
            raise QuotaStoreDown from exc

    async def apply_settlement(self, key_id: str, args: SettleArgs) -> None:
        """Run a settlement that failed before (or one made while Redis was away);
        raises QuotaStoreDown."""
        try:
            await self._settle(keys=_keys(key_id), args=args)
        except RedisError as exc:
            raise QuotaStoreDown from exc

    async def close(self) -> None:
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
        await self._client.aclose()

    async def _call_admit(self, key_id: str, args: list[int | str]) -> list[int]:
        try:
            reply: list[int] = await self._admit(keys=_keys(key_id), args=args)
        except RedisError as exc:
            raise QuotaStoreDown from exc
        return reply

    async def _spent_to_rebuild(self, key_id: str) -> int:
        """What a budget Redis does not hold starts from: the ledger's sum, or, when the
        ledger does not answer (Redis restarted empty during a database outage), the spend
        Redis last reported here."""
        try:
            return await loaded_spent(self._load_spent(key_id))
        except Unavailable:
            seen = self._last_spent.get(key_id)
            if seen is None:
                raise
            log.warning("the ledger does not answer: the budget of key %s is rebuilt from "
                        "the spend Redis last reported", key_id)
            return seen

    async def _call_settle(self, key_id: str, args: SettleArgs) -> None:
        try:
            await self.apply_settlement(key_id, args)
        except QuotaStoreDown:
            self.settle_failed(key_id, args)

    def _admission(self, key: Principal, reply: list[int], reserve_tokens: int,
                   reserve_nanos: int, hold: str) -> Admission:
        status, wait, r_left, r_reset, t_left, t_reset, spent, reserved = reply
        if key.budget_nanos is not None:
            self._last_spent[key.id] = max(spent, self._last_spent.get(key.id, 0))
        limits = RateLimits(
            requests=window_of(key.requests_per_minute, r_left, r_reset)
            if key.requests_per_minute else None,
            tokens=window_of(key.tokens_per_minute, t_left, t_reset)
            if key.tokens_per_minute else None)
        if status == _OVER_BUDGET:
            assert key.budget_nanos is not None
            raise over_budget_error(key.budget_nanos, spent, reserved, reserve_nanos)
        if status == _RATE_LIMITED:
            raise rate_limited_error(limits, wait, reserve_tokens)
        return Admission(key_id=key.id, tokens=reserve_tokens if key.tokens_per_minute else 0,
                         nanos=reserve_nanos if hold else 0, limits=limits,
                         tokens_per_minute=key.tokens_per_minute,
                         budgeted=key.budget_nanos is not None, hold=hold)


def settlement(admission: Admission, *, tokens: int, cost_nanos: int) -> SettleArgs | None:
    """The settle script's arguments for ``admission`` (marked settled), or None when there
    is nothing to tell Redis."""
    if admission.settled:
        return None
    admission.settled = True
    back = admission.tokens - tokens if admission.tokens_per_minute else 0
    if not back and not admission.budgeted:
        return None
    return [admission.tokens_per_minute, back, cost_nanos,
            "1" if admission.budgeted else "0", admission.hold]


def _keys(key_id: str) -> tuple[str, str, str]:
    prefix = f"ai1net:{{{key_id}}}"
    return f"{prefix}:rate", f"{prefix}:budget", f"{prefix}:holds"
