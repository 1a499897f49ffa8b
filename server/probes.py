"""Health without traffic: each model's ``health_url``, probed on a schedule.

Every ``period_s`` (``AI1NET_HEALTH_PROBE_S``, default 30 s; 0 turns probing off) each live
model with a ``health_url`` is probed once, at a random moment of the period (so the probes
of many models, and of many replicas, do not come in step), at most ``concurrency`` at a
time. A probe is a GET through the provider transport — the same pool, SSRF guard, limits
(``max_response_bytes``, the header block) and time-outs (``first_byte_timeout_ms``,
``timeout_ms``) as a call — with the model's auth header; a model whose probe is still out
skips a turn. An answer in 2xx passes; any other status, a limit broken, a connection
failure or no answer in time fails.

The result goes to the health board, and to ``ai1net_health_probes_total{model,result}``: a
failure takes the model out of traffic until a later probe passes (`HealthBoard.probed`), so
an idle model that went down is not the first choice of the next caller; a pass closes its
breaker. Each process probes its own models.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable

from ai1net.server.errors import GatewayError
from ai1net.server.health import HealthBoard
from ai1net.server.http1 import Limits
from ai1net.server.observe import Observer
from ai1net.server.registry import ModelRecord, Registry
from ai1net.server.transport import ProviderRequest, Transport

log = logging.getLogger(__name__)


class Prober:
    def __init__(self, *, registry: Registry, health: HealthBoard, transport: Transport,
                 period_s: float, concurrency: int = 16, observer: Observer | None = None,
                 rng: random.Random | None = None) -> None:
        self._registry = registry
        self._health = health
        self._observer = observer or Observer()
        self._transport = transport
        self._period = period_s
        self._slots = asyncio.Semaphore(concurrency)
        self._rng = rng or random.Random()  # jitter, not a secret
        self._task: asyncio.Task[None] | None = None
        self._probes: dict[str, asyncio.Task[None]] = {}  # by model name, at most one each
        # Model name → why its last probe failed, None when it passed.
        self._results: dict[str, str | None] = {}
        self._probed = asyncio.Condition()
        self.settled = 0  # probes finished, all models together

    def start(self) -> None:
        if self._period > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="ai1net health probes")

    async def close(self) -> None:
        """Stop probing: the schedule and every probe under way, cancelled and awaited."""
        tasks = [t for t in (self._task, *self._probes.values()) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def failing(self, name: str) -> str | None:
        """Why ``name``'s last probe failed; None when it passed or never ran."""
        return self._results.get(name)

    def probed(self, name: str) -> bool:
        """Whether ``name`` has been probed yet."""
        return name in self._results

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate`` holds, checked after each probe."""
        async with self._probed:
            await self._probed.wait_for(predicate)

    async def _run(self) -> None:
        """Each period, a probe of each model at a random moment of it; a model whose last
        probe is still out (a slow endpoint, within its time-out) skips a turn."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            for model in self._registry.all():
                if model.health_url and model.enabled and model.name not in self._probes:
                    at = started + self._rng.uniform(0, self._period)
                    task = asyncio.create_task(self._probe_at(model, at),
                                               name=f"ai1net health probe of {model.name}")
                    self._probes[model.name] = task
                    task.add_done_callback(functools.partial(self._forget, model.name))
            await asyncio.sleep(self._period)

    def _forget(self, name: str, _task: asyncio.Task[None]) -> None:
        self._probes.pop(name, None)

    async def _probe_at(self, model: ModelRecord, at: float) -> None:
        await asyncio.sleep(max(0.0, at - asyncio.get_running_loop().time()))
        async with self._slots:
            try:
                reason = await self.probe(model)
            except Exception:  # a bug here must not end probing for every model
                log.exception("health probe of model %r failed unexpectedly", model.name)
                reason = "the probe itself failed"
        # Out until the next probe has had its chance: within two periods, plus its time.
        self._settle(model.name, reason, hold_s=2 * self._period + model.timeout_ms / 1000)
        self.settled += 1
        async with self._probed:
            self._probed.notify_all()

    async def probe(self, model: ModelRecord) -> str | None:
        """Why ``model``'s health check fails now; None when it passes."""
        total = model.timeout_ms / 1000
        request = ProviderRequest(
            url=model.health_url, headers={"Accept": "application/json, */*",
                                           **model.auth_headers},
            body=b"", first_byte_timeout=min(total, model.first_byte_timeout_ms / 1000),
            limits=Limits(body_bytes=model.max_response_bytes))
        try:
            async with asyncio.timeout(total):
                async with self._transport.fetch(request) as response:
                    await response.read()  # bounded by the limits; leaves the connection reusable
        except TimeoutError:
            return f"no answer within {round(total * 1000)} ms"
        except GatewayError as error:
            return error.message
        if not 200 <= response.status < 300:
            return f"HTTP {response.status}"
        return None

    def _settle(self, name: str, reason: str | None, *, hold_s: float) -> None:
        was = self._results.get(name)
        self._results[name] = reason
        if reason is None:
            if was is not None:
                log.info("model %r passes its health check again", name)
        else:
            if was is None:
                log.warning("model %r fails its health check (%s): out of traffic until it "
                            "passes", name, reason)
        self._health.probed(name, passed=reason is None, hold_s=hold_s)
        self._observer.probed(name, passed=reason is None)
