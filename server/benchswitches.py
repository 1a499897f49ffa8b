"""Benchmark switches, kept apart from the settings: what ``make bench`` turns off to measure
what accounting and tracing cost (bench/costs.py). Not for operators: no flag, no `Settings`
field, not passed to workers by ``Settings.to_env`` (they inherit the environment).

    AI1NET_ACCOUNTING=0   usage events are not recorded (nothing is billed)
    AI1NET_TRACING=0      tracing is never set up: no span, no trace context
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ai1net.server.settings import FALSE_WORDS, TRUE_WORDS


@dataclass(frozen=True, slots=True)
class BenchSwitches:
    accounting: bool = True
    tracing: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BenchSwitches:
        """The switches from ``environ`` (default ``os.environ``); a malformed one is a
        ValueError naming its variable."""
        env = os.environ if environ is None else environ
        return cls(accounting=_switch(env, "AI1NET_ACCOUNTING"),
                   tracing=_switch(env, "AI1NET_TRACING"))


def _switch(env: Mapping[str, str], variable: str) -> bool:
    word = env.get(variable, "").strip().lower()
    if word == "":
        return True
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError(f"{variable} must be one of "
                         f"{', '.join(sorted(TRUE_WORDS | FALSE_WORDS))}, got {word!r}")
    return word in TRUE_WORDS
