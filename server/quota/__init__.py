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

The package, module by module:

- ``core``: what every store shares: the `Quota` protocol, `Admission`, the rate-limit
  windows, the bucket arithmetic and the errors;
- ``local``: :class:`LocalQuota`, one process's limits (each ``--workers`` process has its
  own);
- ``redis_store``: ``RedisQuota``, limits and budgets global across replicas with one Lua
  script per admit and one per settle;
- ``failover``: ``FailoverQuota`` wraps it with per-process shares while Redis is away;
- ``factory``: :func:`build_quota` picks one; :func:`spent_by_key` reads the ledger.

Over a rate limit: :class:`KeyRateLimited` (a ``RateLimited`` carrying the x-ratelimit-*
values); over budget: ``BudgetExceeded``; the store unreachable: ``Unavailable``.
"""

from ai1net.server.quota.core import (
    Admission,
    KeyRateLimited,
    Quota,
    RateLimits,
    SpentLoader,
    Window,
)
from ai1net.server.quota.factory import build_quota, spent_by_key
from ai1net.server.quota.local import LocalQuota

__all__ = ["Admission", "KeyRateLimited", "LocalQuota", "Quota", "RateLimits", "SpentLoader",
           "Window", "build_quota", "spent_by_key"]
