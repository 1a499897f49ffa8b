"""Deadlines for many calls on one timer: ``deadline(seconds)`` is ``asyncio.timeout``
for code that sets one or two on every call.

``asyncio.timeout`` arms an event-loop timer on entry and cancels it on exit. Every call
through the gateway set two (the provider's whole answer, its first byte), and those two
timers cost 4.6% of a gRPC call's CPU (a paired run, ``bench/``). Here deadlines are
bucketed by the tick (``TICK_S``) they fall in: entering files a deadline in its bucket,
leaving takes it out, both dictionary operations. One loop timer waits for the earliest
tick that has deadlines, and is moved only when a new deadline is earlier than every
pending one; calls that end in time, as nearly all do, never touch it.

A deadline expires up to one tick (5 ms) late, as a busy loop's timers are anyway: a
provider time-out of N ms ends the wait between N and N + 5 ms. What an expiry does is
what ``asyncio.timeout``'s does: the task is cancelled, and leaving the block turns that
cancellation (and only that one: a cancellation from elsewhere stays a cancellation) into
``TimeoutError``, or into the error ``timed_out`` makes."""

from __future__ import annotations

import asyncio
from heapq import heappop, heappush
from time import monotonic

TICK_S = 0.005


class Wheel:
    """The pending deadlines of one event loop, by expiry tick.

    The timer fires for the earliest bucket when it is due (or, when that bucket emptied
    before its time, once for nothing, and waits for the next). A timer every tick instead
    cost a worker holding 10,000 streams a sixth of its core at 5 ms a tick.

    Times are ``time.monotonic()``, the clock of uvloop's and asyncio's own loop, read
    directly: uvloop's ``loop.time()`` also updates the loop's cached time, which cost
    2% of a gRPC call when done on every call (a paired run)."""

    __slots__ = ("_buckets", "_loop", "_ticks", "_timer", "_timer_tick", "ready")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # What entering and leaving a deadline hand ``async with`` to await: a done future
        # (awaiting it costs no coroutine).
        self.ready: asyncio.Future[None] = loop.create_future()
        self.ready.set_result(None)
        self._buckets: dict[int, dict[deadline, None]] = {}
        self._ticks: list[int] = []  # a heap of the buckets' ticks (and of emptied ones)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_tick = 0

    def add(self, entry: deadline, seconds: float) -> int:
        """File ``entry`` to expire ``seconds`` from now; its tick."""
        tick = int((monotonic() + seconds) / TICK_S) + 1
        bucket = self._buckets.get(tick)
        if bucket is not None:
            bucket[entry] = None
            return tick
        self._buckets[tick] = {entry: None}
        heappush(self._ticks, tick)
        if self._timer is None or tick < self._timer_tick:
            self._arm(tick)
        return tick

    def remove(self, entry: deadline, tick: int) -> None:
        bucket = self._buckets.get(tick)
        if bucket is not None:
            bucket.pop(entry, None)
            if not bucket:
                del self._buckets[tick]

    def _arm(self, tick: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_tick = tick
        self._timer = self._loop.call_later(max(0.0, tick * TICK_S - monotonic()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = monotonic()
        ticks, buckets = self._ticks, self._buckets
        while ticks:
            bucket = buckets.get(ticks[0])
            if bucket is None:  # emptied before its time
                heappop(ticks)
                continue
            if ticks[0] * TICK_S > now:
                self._arm(ticks[0])
                return
            del buckets[heappop(ticks)]
            for entry in bucket:
                entry.expire()


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

    def expire(self) -> None:
        """The wheel's: the time is up."""
        self._expired = True
        self._task.cancel()

    def timed_out(self) -> BaseException:
        """What leaving an expired block raises."""
        return TimeoutError()
