"""Unique ids in time order, such as ``gen_…``, ``req_…`` and ``key_…``."""

from __future__ import annotations

import random
import secrets
import time

__all__ = ["new_id"]

# The process's one id source, bound once and never reassigned: ids must differ across
# every object a process makes, and not even tests need to choose them. Seeded from the OS
# once; ids only need to be unique, not unguessable (no system call per id).
_source = random.Random(secrets.randbits(128))


def new_id(prefix: str) -> str:
    """A unique id (not a secret), in time order like a ULID: 48 bits of milliseconds then
    64 random bits. New rows then land at the end of primary-key indexes instead of on a
    random page of them (the usage table gets thousands a second)."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{_source.getrandbits(64):016x}"
