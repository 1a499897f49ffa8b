"""The deadline wheel behaves as ``asyncio.timeout`` does, on the default loop and uvloop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from ai1net.common import deadlines
from ai1net.common.deadlines import TICK_S, deadline


def on_both_loops(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())
    uvloop.run(test())


def test_expiry_cancels_the_block_and_raises_timeout_error_on_time() -> None:
    async def scenario() -> None:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with deadline(0.05):
                await asyncio.sleep(10)
        waited = time.monotonic() - started
        assert 0.05 <= waited < 0.05 + TICK_S + 0.2  # the tick, and a loaded machine

    on_both_loops(scenario)


def test_a_block_that_ends_in_time_is_left_alone_and_the_wheel_empties() -> None:
    async def scenario() -> None:
        async with deadline(0.02) as _:
            await asyncio.sleep(0)
        assert not deadlines.wheel()._buckets
        await asyncio.sleep(0.05)  # past the time: nothing expires, the task is not cancelled
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        # With nothing pending the wheel has no timer; a new deadline sets one again.
        assert deadlines.wheel()._timer is None
        with pytest.raises(TimeoutError):
            async with deadline(0.01):
                await asyncio.sleep(1)

    on_both_loops(scenario)


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def scenario() -> None:
        entered = asyncio.Event()

        async def guarded() -> None:
            async with deadline(10):
                entered.set()
                await asyncio.sleep(10)

        task = asyncio.create_task(guarded())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not deadlines.wheel()._buckets

    on_both_loops(scenario)


def test_nested_deadlines_the_inner_one_expiring_is_the_inner_ones_error() -> None:
    class Named(deadline):
        __slots__ = ("name",)

        def __init__(self, name: str, seconds: float) -> None:
            super().__init__(seconds)
            self.name = name

        def timed_out(self) -> BaseException:
            return LookupError(self.name)

    async def scenario() -> None:
        with pytest.raises(LookupError, match="inner"):
            async with Named("outer", 5), Named("inner", 0.01):
                await asyncio.sleep(5)
        # The outer one expiring while the inner one is still pending: the outer's error.
        with pytest.raises(LookupError, match="outer"):
            async with Named("outer", 0.01), Named("inner", 5):
                await asyncio.sleep(5)
        assert not deadlines.wheel()._buckets

    on_both_loops(scenario)


def test_none_waits_forever_and_a_past_deadline_expires_at_the_next_tick() -> None:
    async def scenario() -> None:
        async with deadline(None):
            await asyncio.sleep(0.01)
        with pytest.raises(TimeoutError):
            async with deadline(-1):
                await asyncio.sleep(1)

    on_both_loops(scenario)


def test_many_deadlines_expire_each_in_its_own_tick_order() -> None:
    async def scenario() -> None:
        ended: list[int] = []

        async def one(n: int) -> None:
            try:
                async with deadline(0.01 * (n % 5 + 1)):
                    await asyncio.sleep(5)
            except TimeoutError:
                ended.append(n % 5)

        await asyncio.gather(*(one(n) for n in range(500)))
        assert len(ended) == 500
        assert ended == sorted(ended)
        assert not deadlines.wheel()._buckets

    on_both_loops(scenario)


def test_a_deadline_is_entered_once() -> None:
    async def scenario() -> None:
        limit = deadline(1)
        async with limit:
            pass
        with pytest.raises(RuntimeError, match="once"):
            async with limit:
                pass

    asyncio.run(scenario())


def test_the_timer_moves_only_for_an_earlier_deadline() -> None:
    async def scenario() -> None:
        wheel = deadlines.wheel()
        async with deadline(10):
            timer = wheel._timer
            async with deadline(20):  # later: the timer stays
                assert wheel._timer is timer
            with pytest.raises(TimeoutError):
                async with deadline(0.01):  # earlier: the timer moves to it
                    assert wheel._timer is not timer
                    await asyncio.sleep(1)
            # Once the early one expired, the timer waits for the 10 s one again.
            assert wheel._timer is not None
            assert wheel._timer_tick == min(wheel._buckets)

    on_both_loops(scenario)
