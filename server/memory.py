"""The process's memory: the collector tuned for serving, and memory given back to the
system after a provider's answer was thrown away.

`settle_heap` runs once start-up is over. What start-up made (modules, protobuf descriptors,
the registry) lives as long as the process, so it is moved out of the collector's sight
(``gc.freeze``); and the youngest generation is collected every ``YOUNG_THRESHOLD`` net
allocations instead of 700. Each young collection walks every object of the calls in flight,
so at 700 the collector ran every few calls: at 50,000 a unary call costs 6% less CPU over
HTTP and 3% less over gRPC (a paired run, ``bench/``), for cyclic garbage held a little longer
(most per-call objects are freed by reference counting at once; failed calls: below).
Lower is not better for a worker holding long streams: at 5,000 (1.3% less CPU a unary gRPC
call) one holding 10,000 streams ran its middle collections ten times as often, each a
pause of 70-110 ms over half a GiB of heap, and new calls' p99 first chunk rose from +13 ms
to +74-103 ms (``make bench-streams``).

A failed call leaves reference cycles behind: an error, its traceback, the frames that
handled it, the exchange they held. Only the collector frees those, and at 50,000 a quiet
gateway would keep them for hundreds of failed calls, together with the freed pages of the
large answers they pin: 8 hostile answers at a time left it 36-51 MiB over idle after 27
batches (``make bench-hostile``), where the issue allows 32. And glibc keeps freed heap
pages in its arenas, so after a burst of large answers (bodies, bombs, streams cut at their
limits) the process would stay at its peak. So after a provider's failure, ``trim_soon``
collects the young generation (at most ``YOUNG_THRESHOLD`` objects: a few milliseconds) and
then asks glibc to return free pages (``malloc_trim(0)``; elsewhere than glibc, the
collection alone), at most once a second and ``SETTLE_S`` after it was asked, once the
failing call's frames are gone.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable

TRIM_INTERVAL_S = 1.0
SETTLE_S = 0.05
YOUNG_THRESHOLD = 50_000


def settle_heap() -> None:
    """After start-up: freeze what exists, collect the young generation less often."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    function: Callable[[int], int] = trim
    return function


class Trimmer:
    __slots__ = ("_last", "_pending", "_trim")

    def __init__(self) -> None:
        self._trim = _malloc_trim()
        self._last = 0.0
        # The loop a trim is waiting in (one per loop: a loop may close before it runs).
        self._pending: asyncio.AbstractEventLoop | None = None

    def trim_soon(self) -> None:
        loop = asyncio.get_running_loop()
        if self._pending is loop:
            return
        self._pending = loop
        delay = max(SETTLE_S, self._last + TRIM_INTERVAL_S - time.monotonic())
        loop.call_later(delay, self._run)

    def _run(self) -> None:
        self._pending = None
        self._last = time.monotonic()
        gc.collect(0)
        if self._trim is not None:
            self._trim(0)


TRIMMER = Trimmer()
