"""When to try an idempotent call again, and how long to wait first.

Only reads are retried (a generate call costs money and reached a provider; a write may have
taken effect), and only on failures that waiting can mend: the gateway unreachable or
draining (UNAVAILABLE) and rate limits. The wait grows exponentially with full jitter, as
gRPC's own retry design does; a ``RetryInfo`` the gateway sent replaces it. No retry waits
past the call's deadline.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from ai1net.client.errors import Ai1netError, RateLimited, Unavailable

RETRYABLE: tuple[type[Ai1netError], ...] = (Unavailable, RateLimited)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """``RetryPolicy(max_attempts=1)`` turns retries off."""

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    # A RetryInfo asking for longer than this is not waited for: the error is raised.
    max_retry_after: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise ValueError("backoffs must satisfy 0 <= initial_backoff <= max_backoff")

    def delay(self, attempt: int, error: Ai1netError, *,
              remaining: float | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` (0-based), or None: do not retry."""
        if attempt + 1 >= self.max_attempts or not isinstance(error, RETRYABLE):
            return None
        if error.retry_after is not None:
            wait = error.retry_after
            if wait > self.max_retry_after:
                return None
        else:
            ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** attempt)
            wait = self.rng.uniform(0, ceiling)
        if remaining is not None and wait >= remaining:
            return None
        return wait


class Deadline:
    """The time left of a call's timeout, shared by all of its attempts."""

    __slots__ = ("_end",)

    def __init__(self, timeout: float | None) -> None:
        self._end = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())
