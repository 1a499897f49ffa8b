"""Three replicas on one PostgreSQL database and a Redis of the test's own, behind HAProxy,
under steady mixed load (unary and streaming): start-up together, SIGKILL, a rolling
restart, Redis and database outages, and a budget and a rate limit held cluster-wide.

Minutes long: `make cluster-test` (AI1NET_CLUSTER_TEST=1) runs it, `make test` skips it.
It prints its counts (failed calls per phase, usage rows, overspend).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from grpc import aio

from ai1net.v1 import generate_pb2, generate_pb2_grpc
from tests.conftest import ADMIN_KEY, POSTGRES_URL, PostgresDatabase, bearer
from tests.integration.test_outage import set_connections
from tests.support.gateway_process import (
    GatewayProcess,
    free_port,
    query,
    start_gateway,
    wait_ready_or_exit,
)
from tests.support.haproxy import HAProxy
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.cluster, pytest.mark.postgres, pytest.mark.timeout(900),
              pytest.mark.skipif(os.environ.get("AI1NET_CLUSTER_TEST") != "1",
                                 reason="minutes long: `make cluster-test` runs it")]

REPLICAS = 3
CONCURRENCY = 12
PRICE_OUT = 1.0  # USD per 1k output tokens: the scripted provider's /ok bills 5 → $0.005


@dataclass
class Load:
    """Steady calls through the balancer; each result kept under the phase it began in."""

    url: str
    key: str
    phase: str = "start"
    results: list[tuple[str, int, str]] = field(default_factory=list)  # phase, status, id
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    errors: Counter[str] = field(default_factory=Counter)  # error bodies, to report

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        async with aiohttp.ClientSession(connector=connector) as http:
            await asyncio.gather(*(self._worker(http, n) for n in range(CONCURRENCY)))

    def stop(self) -> None:
        self._stop.set()

    def failures(self, phase: str) -> int:
        return sum(1 for p, status, _ in self.results if p == phase and status != 200)

    def statuses(self, phase: str) -> dict[int, int]:
        return dict(Counter(status for p, status, _ in self.results if p == phase))

    def calls(self, phase: str) -> int:
        return sum(1 for p, _, _ in self.results if p == phase)

    async def _worker(self, http: aiohttp.ClientSession, n: int) -> None:
        stream = False
        while not self._stop.is_set():
            stream = not stream if n % 2 else False  # half the workers alternate
            phase = self.phase  # a call counts in the phase it started in
            status, gen_id = await self._call(http, stream)
            self.results.append((phase, status, gen_id))

    async def _call(self, http: aiohttp.ClientSession, stream: bool) -> tuple[int, str]:
        body = {"model": "m-stream" if stream else "m", "input": "hi", "stream": stream}
        try:
            async with http.post(f"{self.url}/v1/generate", json=body,
                                 headers=bearer(self.key),
                                 timeout=aiohttp.ClientTimeout(total=30)) as resp:
                text = await resp.text()
                if resp.status != 200:
                    self.errors[text[:160]] += 1
                    return resp.status, ""
                last = json.loads(text.strip().splitlines()[-1])
                return (200, last["id"]) if "id" in last else (599, "")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return 598, ""  # reset, cut or unreadable


@dataclass
class Cluster:
    database_url: str
    redis_url: str
    tmp_path: Path
    ports: list[tuple[int, int]] = field(
        default_factory=lambda: [(free_port(), free_port()) for _ in range(REPLICAS)])
    replicas: list[GatewayProcess] = field(default_factory=list)

    async def start(self, i: int) -> GatewayProcess:
        return await start_gateway(
            self.database_url, self.tmp_path, wait_ready=False, ports=self.ports[i],
            log=self.tmp_path / f"replica{i}.log",
            AI1NET_REDIS_URL=self.redis_url, AI1NET_SPOOL_DIR=str(self.tmp_path / f"spool{i}"),
            AI1NET_USAGE_FLUSH_INTERVAL_S="0.1", AI1NET_DRAIN_DELAY_S="2",
            AI1NET_GRACE_PERIOD_S="10")

    async def restart(self, i: int) -> None:
        self.replicas[i] = await self.start(i)
        await wait_ready_or_exit(self.replicas[i])

    async def __aenter__(self) -> Cluster:
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Whatever failed, no replica outlives the test."""
        for replica in self.replicas:
            if replica.process.returncode is None:
                replica.process.kill()
                await replica.process.wait()

    async def stop_all(self) -> list[int]:
        for replica in self.replicas:
            if replica.process.returncode is None:
                replica.process.send_signal(signal.SIGTERM)
        return [await asyncio.wait_for(r.process.wait(), 30) for r in self.replicas]


async def api(url: str, method: str, path: str, key: str = ADMIN_KEY,
              **body: object) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.request(
            method, f"{url}{path}", json=body or None, headers=bearer(key)) as resp:
        return resp.status, (await resp.json() if resp.status != 204 else {})


async def key(url: str, name: str, **limits: object) -> str:
    status, body = await api(url, "POST", "/v1/keys", role="consumer", name=name, **limits)
    assert status == 201, body
    return str(body["key"])


async def eventually(check, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.05)


async def burst(url: str, key: str, calls: int) -> Counter[int]:
    """``calls`` calls at once; their statuses."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async def one() -> int:
            async with http.post(f"{url}/v1/generate", headers=bearer(key), json={
                    "model": "m", "input": "hi", "parameters": {"max_tokens": 5}}) as resp:
                await resp.read()
                return resp.status
        return Counter(await asyncio.gather(*(one() for _ in range(calls))))


async def test_three_replicas_behind_haproxy(tmp_path: Path, provider_url: str):
    if not POSTGRES_URL:
        pytest.skip("AI1NET_TEST_POSTGRES_URL is not set")
    report: dict[str, object] = {}
    try:
        await _run(tmp_path, provider_url, report)
    finally:  # the counts, whatever failed
        print("\ncluster test:", json.dumps(report, indent=2, default=str))


async def _run(tmp_path: Path, provider_url: str, report: dict[str, object]) -> None:
    database = PostgresDatabase()
    async with (database as url, RedisServer() as redis,
                Cluster(url, redis.url, tmp_path) as cluster):
        # Started at the same moment on an empty database: all come up (migrations once).
        cluster.replicas = list(await asyncio.gather(*(cluster.start(i)
                                                       for i in range(REPLICAS))))
        await asyncio.gather(*(wait_ready_or_exit(r) for r in cluster.replicas))
        async with HAProxy(tmp_path, cluster.ports) as haproxy:
            for i in range(REPLICAS):
                await haproxy.wait_state(f"r{i}", "UP")
            lb = haproxy.url
            for name, path in (("m", "/ok"), ("m-stream", "/stream/ndjson")):
                status, body = await api(lb, "POST", "/v1/models", name=name, type="text",
                                         endpoint=provider_url + path,
                                         pricing={"input_per_1k_tokens": 0,
                                                  "output_per_1k_tokens": PRICE_OUT})
                assert status == 201, body
            # The load's key is rate-limited and budgeted (generously): every call goes
            # through the shared quota, so the Redis outage is felt.
            load_key = await key(lb, "load", rate_limit={"requests_per_minute": 1_000_000},
                                 budget_usd=10_000.0)
            await eventually(lambda: _known_everywhere(cluster, load_key))
            async with aio.insecure_channel(f"127.0.0.1:{haproxy.grpc_port}") as channel:
                answer = await generate_pb2_grpc.GenerateServiceStub(channel).Generate(
                    generate_pb2.GenerateRequest(model="m", input="hi"),
                    metadata=(("x-api-key", load_key),), timeout=10)
                assert answer.id.startswith("gen_")  # gRPC (HTTP/2) through the balancer

            load = Load(lb, load_key)
            running = asyncio.create_task(load.run())
            try:
                await _phases(cluster, haproxy, load, redis, database, report)
            finally:
                load.stop()
                await running

            report["quota per replica before the budget step"] = await _quota_states(cluster)
            # Budget: 20 calls' worth, 100 calls at once, spread over the three replicas.
            budgeted = await key(lb, "budgeted", budget_usd=20 * 5 * PRICE_OUT / 1000)
            await eventually(lambda: _known_everywhere(cluster, budgeted))
            statuses = await burst(lb, budgeted, 100)
            report["budget of 20 calls, 100 at once: statuses"] = dict(statuses)
            report["budget overspend (calls)"] = statuses[200] - 20
            assert statuses[200] in (20, 21), statuses  # overspent by one call at most
            # Rate limit 60/min: 100 calls at once, cluster-wide.
            limited = await key(lb, "limited", rate_limit={"requests_per_minute": 60})
            await eventually(lambda: _known_everywhere(cluster, limited))
            statuses = await burst(lb, limited, 100)
            report["rate limit 60/min, 100 at once: statuses"] = dict(statuses)
            assert 57 <= statuses[200] <= 63  # within 5%

        codes = await cluster.stop_all()
        report["exit codes"] = codes
        assert codes == [0] * REPLICAS
        stored = {str(row[0]) for row in await query(url, "select id from usage_events")}
        answered = {gen_id for _, status, gen_id in load.results if status == 200}
        report["answered calls"] = len(answered)
        report["answered calls without exactly one usage row"] = len(answered - stored)
        assert answered <= stored  # ids are the primary key: at most one row each


async def _phases(cluster: Cluster, haproxy: HAProxy, load: Load, redis: RedisServer,
                  database: PostgresDatabase, report: dict[str, object]) -> None:
    await eventually(lambda: _at_least(load, "start", 50), within=30)

    # SIGKILL one replica: only its calls in flight fail, none once HAProxy noticed.
    load.phase = "kill"
    cluster.replicas[0].process.send_signal(signal.SIGKILL)
    await haproxy.wait_state("r0", "DOWN")
    load.phase = "after-kill"
    await eventually(lambda: _at_least(load, "after-kill", 50), within=30)
    await cluster.restart(0)  # replays its spool
    await haproxy.wait_state("r0", "UP")
    report["SIGKILL: failed calls (in flight on the killed replica)"] = load.failures("kill")
    report["SIGKILL: failed calls once HAProxy noticed"] = load.failures("after-kill")
    report["SIGKILL: statuses once HAProxy noticed"] = load.statuses("after-kill")
    report["errors"] = dict(load.errors)
    assert load.failures("kill") <= CONCURRENCY
    assert load.failures("after-kill") == 0

    # Rolling restart: SIGTERM each in turn, restart, wait until the balancer uses it.
    load.phase = "rolling"
    for i in range(REPLICAS):
        cluster.replicas[i].process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(cluster.replicas[i].process.wait(), 30) == 0
        await cluster.restart(i)
        await haproxy.wait_state(f"r{i}", "UP")
    report["rolling restart: calls, failed"] = (load.calls("rolling"),
                                                load.failures("rolling"))
    assert load.failures("rolling") == 0

    # Redis stopped for 5 s under load (budgeted, rate-limited key): calls go on.
    load.phase = "redis"
    await redis.stop()
    await asyncio.sleep(5)  # the outage's length is the scenario, not a wait for an event
    await redis.start()
    load.phase = "after-redis"
    calls, failed = load.calls("redis"), load.failures("redis")
    report["Redis 5 s outage: calls, failed"] = (calls, failed)
    assert failed <= calls / 100
    # Changes propagate again: a key revoked through one replica fails on the others.
    first = f"http://127.0.0.1:{cluster.ports[0][0]}"
    revoked = await key(first, "revoked")
    await eventually(lambda: _known_everywhere(cluster, revoked))
    _, keys = await api(first, "GET", "/v1/keys")
    key_id = next(k["id"] for k in keys["keys"] if k["name"] == "revoked")  # type: ignore[index,union-attr]
    assert (await api(first, "DELETE", f"/v1/keys/{key_id}"))[0] == 204
    await eventually(lambda: _refused_everywhere(cluster, revoked), within=5)

    # The database away for 3 s: calls go on; held usage is written when it returns.
    load.phase = "database"
    await set_connections(database.admin, database.name, allowed=False)
    try:
        await asyncio.sleep(3)  # the outage's length is the scenario
    finally:
        await set_connections(database.admin, database.name, allowed=True)
    load.phase = "end"
    calls, failed = load.calls("database"), load.failures("database")
    report["database 3 s outage: calls, failed"] = (calls, failed)
    assert failed <= calls / 100
    await eventually(lambda: _at_least(load, "end", 50), within=30)


async def _quota_states(cluster: Cluster) -> list[dict[str, str]]:
    """Each replica's ai1net_quota_* gauges and counters, from /metrics."""
    states = []
    async with aiohttp.ClientSession() as session:
        for http, _ in cluster.ports:
            async with session.get(f"http://127.0.0.1:{http}/metrics") as resp:
                lines = (await resp.text()).splitlines()
            states.append(dict(line.split(" ", 1) for line in lines
                               if line.startswith("ai1net_quota_")))
    return states


async def _at_least(load: Load, phase: str, calls: int) -> bool:
    return load.calls(phase) >= calls


async def _statuses_everywhere(cluster: Cluster, key: str) -> set[int]:
    """GET /v1/models with the key on each replica (no call, no spend)."""
    found = set()
    for http, _ in cluster.ports:
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{http}/v1/models", headers=bearer(key)) as resp:
            found.add(resp.status)
    return found


async def _known_everywhere(cluster: Cluster, key: str) -> bool:
    return await _statuses_everywhere(cluster, key) == {200}


async def _refused_everywhere(cluster: Cluster, key: str) -> bool:
    return await _statuses_everywhere(cluster, key) == {401}

