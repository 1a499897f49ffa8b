"""server/memory.py: what a failed call leaves behind is collected and given back."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ai1net.server.memory import SETTLE_S, Trimmer


class _Held:
    """Stands for what a failed exchange held (bytes, a parser, its frames)."""

    def __init__(self) -> None:
        self.cycle = self  # an error, its traceback and frames hold each other so


@contextmanager
def garbage_in_a_cycle() -> Iterator[Callable[[], object]]:
    """A cycle made garbage, with the collector off (only the trimmer may collect): a
    weak reference to it, dead once it is collected."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        held = _Held()  # young: made after the last automatic collection
        gone = weakref.ref(held)
        del held
        yield gone
    finally:
        if enabled:
            gc.enable()


def test_after_a_failure_the_young_generation_is_collected_and_pages_given_back():
    trimmer = Trimmer()
    trims: list[int] = []
    trimmer._trim = lambda pad: trims.append(pad) or 1  # the real one is glibc's

    async def fail_then_wait(gone: Callable[[], object]) -> None:
        trimmer.trim_soon()
        trimmer.trim_soon()  # asked again before it ran: still once
        await asyncio.sleep(SETTLE_S / 2)
        assert gone() is not None  # not yet: the failing call's frames may still be there
        await asyncio.sleep(SETTLE_S + 0.1)

    with garbage_in_a_cycle() as gone:
        asyncio.run(fail_then_wait(gone))
        assert gone() is None
    assert trims == [0]


def test_without_glibc_the_collection_still_runs():
    trimmer = Trimmer()
    trimmer._trim = None

    async def fail_then_wait() -> None:
        trimmer.trim_soon()
        await asyncio.sleep(SETTLE_S + 0.1)

    with garbage_in_a_cycle() as gone:
        asyncio.run(fail_then_wait())
        assert gone() is None


def test_a_trim_asked_in_a_loop_that_closed_does_not_stop_later_ones():
    trimmer = Trimmer()
    ran: list[int] = []
    trimmer._trim = lambda pad: ran.append(pad) or 1  # the real one is glibc's

    async def ask(wait: float) -> None:
        trimmer.trim_soon()
        await asyncio.sleep(wait)

    trimmer._last = time.monotonic()  # a trim just ran: the next waits a second
    asyncio.run(ask(0))  # scheduled, then the loop closed before it ran
    trimmer._last = 0.0
    asyncio.run(ask(SETTLE_S + 0.15))
    assert ran == [0]
