"""Calls in flight, per model and in all: past a limit the gateway sheds load at once
(``Overloaded``: 503 with Retry-After, or the next candidate) instead of queueing without
bound, so that a slow or hostile model cannot starve the others."""

from __future__ import annotations

from ai1net.server.errors import Overloaded

DEFAULT_MAX_IN_FLIGHT = 20_000


class InFlight:
    __slots__ = ("_limit", "_models", "total")

    def __init__(self, *, limit: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        self._limit = limit
        self._models: dict[str, int] = {}
        self.total = 0

    def enter(self) -> None:
        """One more call on this process, or `Overloaded`."""
        if self.total >= self._limit:
            raise Overloaded(f"the gateway has {self.total} calls in flight, its limit; "
                             f"try again shortly", scope="process")
        self.total += 1

    def leave(self) -> None:
        self.total -= 1

    def take(self, name: str, limit: int) -> None:
        """One more call to model ``name``, or `Overloaded` when ``limit`` are out."""
        count = self._models.get(name, 0)
        if count >= limit:
            raise Overloaded(f"model {name!r} has {count} calls in flight, its "
                             f"max_concurrency; try again shortly", scope="model")
        self._models[name] = count + 1

    def give(self, name: str) -> None:
        count = self._models[name] - 1
        if count:
            self._models[name] = count
        else:
            del self._models[name]

    def of(self, name: str) -> int:
        return self._models.get(name, 0)
