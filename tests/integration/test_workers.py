"""``serve --workers 2``: /metrics on either worker counts the calls both served (§2.5)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, bearer
from tests.support.gateway_process import free_port

CALLS = 20


async def lines_until(stream: asyncio.StreamReader, pattern: str, count: int = 1) -> list[str]:
    """The first ``count`` lines matching ``pattern`` (the others are skipped)."""
    found: list[str] = []
    while len(found) < count:
        line = (await stream.readline()).decode()
        assert line, f"the stream ended before {pattern!r}"
        if re.search(pattern, line):
            found.append(line)
    return found


def requests_counted(text: str, model: str) -> float:
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == "ai1net_requests_total" and sample.labels["model"] == model)


def calls_in(file: Path) -> float:
    return sum(value for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(file))
               if '"ai1net_requests_total"' in key)


async def test_metrics_with_two_workers_count_every_call(tmp_path: Path):
    http_port, grpc_port = free_port(), free_port()
    metrics_dir = tmp_path / "metrics"
    env = {**os.environ, "AI1NET_DATABASE_URL": f"sqlite:///{tmp_path / 'workers.db'}",
           "AI1NET_SECRET_KEY": "workers-test", "AI1NET_METRICS_DIR": str(metrics_dir)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ai1net.server.cli", "serve", "--demo", "--workers", "2",
        "--http-addr", f"127.0.0.1:{http_port}", "--grpc-addr", f"127.0.0.1:{grpc_port}",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    try:
        banner = (await lines_until(process.stdout, "consumer key"))[0]
        key = banner.rsplit(" ", 1)[1].strip()
        # Both processes are serving once each has said so.
        await lines_until(process.stderr, "HTTP bridge listening", count=2)
        base = f"http://127.0.0.1:{http_port}"
        # A new connection per request, so that the kernel spreads them over both workers.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            for _ in range(CALLS):
                async with http.post(f"{base}/v1/generate", headers=bearer(key), json={
                        "model": "demo-text", "input": "hi"}) as resp:
                    assert resp.status == 200, await resp.text()
            scraped = []
            for _ in range(10):
                async with http.get(f"{base}/metrics") as resp:
                    scraped.append(requests_counted(await resp.text(), "demo-text"))
        assert scraped == [CALLS] * 10
        served = [calls_in(f) for f in metrics_dir.glob("counter_*.db")]
        assert len([n for n in served if n]) == 2, served  # both workers took calls
    finally:
        process.send_signal(signal.SIGTERM)
        await process.communicate()
    assert process.returncode == 0
