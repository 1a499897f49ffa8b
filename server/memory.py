"""Giving memory back to the system after a provider's answer was thrown away.

glibc keeps freed heap pages in its arenas; after a burst of large answers (bodies, bombs,
streams cut at their limits) the process would stay at its peak. ``trim_soon`` asks glibc
to return them (``malloc_trim(0)``), at most once a second, once the failing call's frames
are gone. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time
from collections.abc import Callable

TRIM_INTERVAL_S = 1.0


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class Trimmer:
    __slots__ = ("_last", "_pending", "_trim")

    def __init__(self) -> None:
        self._trim = _malloc_trim()
        self._last = 0.0
        self._pending = False

    def trim_soon(self) -> None:
        if self._trim is None or self._pending:
            return
        self._pending = True
        delay = max(0.0, self._last + TRIM_INTERVAL_S - time.monotonic())
        asyncio.get_running_loop().call_later(delay, self._run)

    def _run(self) -> None:
        self._pending = False
        self._last = time.monotonic()
        assert self._trim is not None
        self._trim(0)


TRIMMER = Trimmer()
