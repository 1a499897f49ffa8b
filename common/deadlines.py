"""Deadlines for many calls on one timer: ``deadline(seconds)`` is ``asyncio.timeout``
for code that sets one or two on every call.

``asyncio.timeout`` arms an event-loop timer on entry and cancels it on exit. Every call
through the gateway set two (the provider's whole answer, its first byte), and those two
timers cost about 4.6% of a gRPC call's CPU (a paired run, ``bench/``; this wheel costs
1.5%). Here a call's
deadline is an entry in a hashed timer wheel (the design of Varghese and Lauck, as in
Netty's ``HashedWheelTimer`` and the Linux kernel's timers): entering files it in the bucket
of its expiry tick, leaving takes it out, both O(1) dictionary operations; one loop timer a
tick, armed only while some deadline is pending, expires the buckets that are due.

A deadline expires up to one tick (``TICK_S``, 5 ms) late, as a busy loop's timers are
anyway: a provider time-out of N ms ends the wait between N and N + 5 ms. What an expiry does is
what ``asyncio.timeout``'s does: the task is cancelled, and leaving the block turns that
cancellation (and only that one: a cancellation from elsewhere stays a cancellation) into
``TimeoutError``, or into the error ``timed_out`` makes.
"""

from __future__ import annotations

import asyncio
from time import monotonic

TICK_S = 0.005


class Wheel:
    """The pending deadlines of one event loop, by expiry tick.

    Times are ``time.monotonic()``, the clock of uvloop's and asyncio's own loop, read
    directly: uvloop's ``loop.time()`` also updates the loop's cached time, which cost
    2% of a gRPC call when done on every call (a paired run)."""

    __slots__ = ("_armed", "_buckets", "_count", "_done", "_loop", "ready")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # What entering and leaving a deadline hand ``async with`` to await: a done future
        # (awaiting it costs no coroutine).
        self.ready: asyncio.Future[None] = loop.create_future()
        self.ready.set_result(None)
        self._buckets: dict[int, dict[deadline, None]] = {}
        self._count = 0
        self._done = 0  # every tick up to this one has been expired
        self._armed = False

    def add(self, entry: deadline, seconds: float) -> int:
        """File ``entry`` to expire ``seconds`` from now; its tick."""
        now = monotonic()
        if not self._armed:
            self._armed = True
            self._done = int(now / TICK_S)
            self._loop.call_later(TICK_S, self._tick)
        tick = max(int((now + seconds) / TICK_S) + 1, self._done + 1)
        bucket = self._buckets.get(tick)
        if bucket is None:
            self._buckets[tick] = {entry: None}
        else:
            bucket[entry] = None
        self._count += 1
        return tick

    def remove(self, entry: deadline, tick: int) -> None:
        bucket = self._buckets.get(tick)
        if bucket is not None and bucket.pop(entry, 0) is None:
            self._count -= 1
            if not bucket:
                del self._buckets[tick]

    def _tick(self) -> None:
        now = int(monotonic() / TICK_S)
        for tick in range(self._done + 1, now + 1):
            bucket = self._buckets.pop(tick, None)
            if bucket is not None:
                self._count -= len(bucket)
                for entry in bucket:
                    entry.expire()
        self._done = max(self._done, now)
        if self._count:
            self._loop.call_later(TICK_S, self._tick)
        else:
            self._armed = False


_last: tuple[asyncio.AbstractEventLoop, Wheel] | None = None
_wheels: dict[asyncio.AbstractEventLoop, Wheel] = {}


def wheel() -> Wheel:
    """The running loop's wheel (a process serves from one loop; tests start many, and a
    closed loop's wheel goes with the loop's next replacement)."""
    global _last  # the one-entry cache of the common case
    loop = asyncio.get_running_loop()
    if _last is not None and _last[0] is loop:
        return _last[1]
    for closed in [known for known in _wheels if known.is_closed()]:
        del _wheels[closed]
    found = _wheels.get(loop)
    if found is None:
        found = _wheels[loop] = Wheel(loop)
    _last = (loop, found)
    return found


class deadline:  # lower case: used as asyncio.timeout is
    """``async with deadline(seconds):`` the block is cancelled after ``seconds`` and
    leaving it raises ``timed_out()``; ``None`` waits forever."""

    __slots__ = ("_cancelling", "_expired", "_task", "_tick", "_wheel", "seconds")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._wheel: Wheel | None = None
        self._expired = False

    def __aenter__(self) -> asyncio.Future[None]:
        if self._wheel is not None:
            raise RuntimeError("a deadline is entered once")
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("deadline() is used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._wheel = wheel()
        if self.seconds is not None:
            self._tick = self._wheel.add(self, self.seconds)
        return self._wheel.ready

    def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                  _tb: object) -> asyncio.Future[None]:
        assert self._wheel is not None
        if not self._expired:
            if self.seconds is not None:
                self._wheel.remove(self, self._tick)
        elif self._task.uncancel() <= self._cancelling and kind is asyncio.CancelledError:
            raise self.timed_out() from error
        return self._wheel.ready

    @property
    def expired(self) -> bool:
        return self._expired

    def expire(self) -> None:
        """The wheel's: the time is up."""
        self._expired = True
        self._task.cancel()

    def timed_out(self) -> BaseException:
        """What leaving an expired block raises."""
        return TimeoutError()
