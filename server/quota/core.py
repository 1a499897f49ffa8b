"""What every quota store shares: the protocol, an admission, the rate-limit windows, the
bucket arithmetic and the errors (the package docstring tells the rules)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from ai1net.server.errors import BudgetExceeded, GatewayError, RateLimited, Unavailable
from ai1net.server.keys import Principal

__all__ = ["UNIT", "Admission", "KeyRateLimited", "Quota", "RateLimits", "SpentLoader", "Window",
           "ceil_div", "check_amounts", "loaded_spent", "over_budget_error",
           "rate_limited_error", "wait_us", "window_of"]

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


# -- bucket arithmetic and the errors, shared by the stores -------------------------------


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def wait_us(level: int, amount: int, limit: int) -> int:
    """Microseconds until the bucket holds ``amount`` (or is full, if that is less)."""
    return max(0, ceil_div(min(amount, limit) * UNIT - level, limit))


def window_of(limit: int, remaining: int, reset_us: int) -> Window:
    return Window(limit=limit, remaining=max(0, remaining), reset_s=ceil_div(reset_us, 10**6))


def _retry_after_s(wait_us: int) -> int:
    return max(1, ceil_div(wait_us, 10**6))


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


async def loaded_spent(load: Awaitable[int]) -> int:
    try:
        return await load
    except (GatewayError, asyncio.CancelledError):
        raise
    except Exception as exc:
        raise Unavailable("could not load the key's spend from the database") from exc
