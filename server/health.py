"""What the gateway observed of each model, and its circuit breaker.

A model failing ``EJECT_AFTER`` times in a row, or with an error rate over
``EJECT_RATE`` among its last ``WINDOW`` calls, is ejected for a cool-down that
doubles on each repeat (up to ``MAX_COOLDOWN_S``). After the cool-down one call
is let through (half-open): success closes the breaker, failure ejects again.

A model's health probe (probes.py) also feeds the breaker: a failed probe ejects the model
until the next probe, which renews or ends it; a passed probe closes the breaker whatever
opened it, as Envoy's active health checks un-eject a host. Probes are not calls: they
count in neither ``requests`` nor ``error_rate``.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ai1net.server.routing import Observation

EWMA_ALPHA = 0.2
WINDOW = 20
EJECT_AFTER = 5
EJECT_RATE = 0.5
MIN_FOR_RATE = 10
BASE_COOLDOWN_S = 5.0
MAX_COOLDOWN_S = 300.0


@dataclass(frozen=True, slots=True)
class Stats:
    requests: int
    error_rate: float
    p50_latency_ms: float
    ttft_p50_ms: float
    health: str


class _Model:
    __slots__ = ("consecutive_failures", "cooldown_s", "ejected_until", "errors",
                 "ewma_ms", "latencies", "outcomes", "probing", "requests", "ttfts")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.ewma_ms = 0.0
        self.latencies: deque[float] = deque(maxlen=200)
        self.ttfts: deque[float] = deque(maxlen=200)
        self.outcomes: deque[bool] = deque(maxlen=WINDOW)
        self.consecutive_failures = 0
        self.ejected_until = 0.0
        self.cooldown_s = BASE_COOLDOWN_S
        self.probing = False


class HealthBoard:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._models: dict[str, _Model] = {}

    def _get(self, name: str) -> _Model:
        model = self._models.get(name)
        if model is None:
            model = self._models[name] = _Model()
        return model

    def success(self, name: str, *, latency_ms: float, ttft_ms: float | None = None) -> None:
        model = self._get(name)
        model.requests += 1
        model.outcomes.append(True)
        model.consecutive_failures = 0
        model.ewma_ms = latency_ms if model.requests == 1 else \
            (1 - EWMA_ALPHA) * model.ewma_ms + EWMA_ALPHA * latency_ms
        model.latencies.append(latency_ms)
        model.ttfts.append(latency_ms if ttft_ms is None else ttft_ms)
        if model.probing or model.ejected_until:
            model.ejected_until, model.cooldown_s, model.probing = 0.0, BASE_COOLDOWN_S, False

    def failure(self, name: str, *, latency_ms: float | None = None) -> None:
        model = self._get(name)
        model.requests += 1
        model.errors += 1
        model.outcomes.append(False)
        model.consecutive_failures += 1
        if latency_ms is not None:
            model.ewma_ms = (1 - EWMA_ALPHA) * model.ewma_ms + EWMA_ALPHA * latency_ms
        if model.probing or self._should_eject(model):
            self._eject(model)

    def probed(self, name: str, *, passed: bool, hold_s: float) -> None:
        """A health probe's result; a failure holds the model out for ``hold_s``."""
        model = self._get(name)
        if passed:
            model.consecutive_failures = 0
            if model.ejected_until:
                model.ejected_until, model.cooldown_s, model.probing = 0.0, BASE_COOLDOWN_S, False
        else:
            model.ejected_until = max(model.ejected_until, self._clock() + hold_s)
            model.probing = False

    def observe(self, name: str) -> Observation | None:
        model = self._models.get(name)
        if model is None:
            return None
        return Observation(samples=len(model.latencies), latency_ms=model.ewma_ms,
                           error_rate=self._error_rate(model), available=self.admits(name))

    def admits(self, name: str) -> bool:
        """Whether a call may go to this model now (closed, or the half-open probe)."""
        model = self._models.get(name)
        if model is None or not model.ejected_until:
            return True
        return not (self._clock() < model.ejected_until or model.probing)

    def ejected_for(self, name: str) -> float:
        """Seconds until ``name`` may take a call again (0 when it may now)."""
        if self.admits(name):
            return 0.0
        model = self._models[name]
        return max(0.0, model.ejected_until - self._clock())

    def begin(self, name: str) -> None:
        """A call is about to go to ``name``; past its cool-down this is the probe."""
        model = self._models.get(name)
        if model is not None and model.ejected_until and self._clock() >= model.ejected_until:
            model.probing = True

    def circuit_states(self) -> dict[str, int]:
        """Each observed model's breaker: 0 closed, 1 half-open, 2 open (for /metrics)."""
        now = self._clock()
        states = {}
        for name, model in self._models.items():
            if not model.ejected_until:
                states[name] = 0
            elif model.probing or now >= model.ejected_until:
                states[name] = 1
            else:
                states[name] = 2
        return states

    def stats(self, name: str) -> Stats:
        model = self._models.get(name)
        if model is None:
            return Stats(0, 0.0, 0.0, 0.0, "healthy")
        return Stats(requests=model.requests, error_rate=self._error_rate(model),
                     p50_latency_ms=_median(model.latencies), ttft_p50_ms=_median(model.ttfts),
                     health=self._health(model))

    def _health(self, model: _Model) -> str:
        if model.ejected_until and (self._clock() < model.ejected_until or model.probing):
            return "ejected"
        return "degraded" if model.consecutive_failures or self._error_rate(model) > 0.1 \
            else "healthy"

    @staticmethod
    def _error_rate(model: _Model) -> float:
        return model.outcomes.count(False) / len(model.outcomes) if model.outcomes else 0.0

    def _should_eject(self, model: _Model) -> bool:
        return model.consecutive_failures >= EJECT_AFTER or (
            len(model.outcomes) >= MIN_FOR_RATE and self._error_rate(model) > EJECT_RATE)

    def _eject(self, model: _Model) -> None:
        if model.probing or model.ejected_until:
            model.cooldown_s = min(model.cooldown_s * 2, MAX_COOLDOWN_S)
        model.ejected_until = self._clock() + model.cooldown_s
        model.probing = False


def _median(values: deque[float]) -> float:
    return round(statistics.median(values), 1) if values else 0.0
