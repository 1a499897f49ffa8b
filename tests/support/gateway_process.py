"""``ai1net serve`` as a child process, for tests of what signals do to it."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ai1net.server.storage import async_url
from tests.conftest import ADMIN_KEY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class GatewayProcess:
    process: asyncio.subprocess.Process
    base: str  # the HTTP bridge's URL
    grpc_target: str


async def start_gateway(database_url: str, tmp_path: Path, *, wait_ready: bool = True,
                        ports: tuple[int, int] | None = None, log: Path | None = None,
                        **env: str) -> GatewayProcess:
    """A gateway in ``tmp_path`` on ``ports`` (HTTP, gRPC; default: free ones); ``env`` adds
    AI1NET_* settings; its output goes to ``log`` (appended), or nowhere."""
    http, grpc_port = ports or (free_port(), free_port())
    environ = {**os.environ, "AI1NET_ADMIN_KEY": ADMIN_KEY, "AI1NET_SECRET_KEY": "process-test",
               "AI1NET_ALLOW_PRIVATE_ENDPOINTS": "1", "AI1NET_DATABASE_URL": database_url,
               "AI1NET_USAGE_FLUSH_INTERVAL_S": "30", **env}  # only the shutdown flush writes
    output = _append_to(log) if log else asyncio.subprocess.DEVNULL
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ai1net.server.cli", "serve", "--http-addr",
            f"127.0.0.1:{http}", "--grpc-addr", f"127.0.0.1:{grpc_port}", cwd=tmp_path,
            env=environ, stdout=output, stderr=output)
    finally:
        if log:
            os.close(output)
    started = GatewayProcess(process, f"http://127.0.0.1:{http}", f"127.0.0.1:{grpc_port}")
    if wait_ready:
        await wait_ready_or_exit(started)
    return started


def _append_to(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


async def wait_ready_or_exit(gateway: GatewayProcess) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            if gateway.process.returncode is not None:
                raise RuntimeError(f"gateway exited with {gateway.process.returncode}")
            try:
                async with session.get(f"{gateway.base}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    gateway.process.kill()
    raise RuntimeError("gateway did not become ready")


async def query(database_url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(text(sql))).all()]
    finally:
        await engine.dispose()


async def count_events(database_url: str) -> int:
    return int(str((await query(database_url, "select count(*) from usage_events"))[0][0]))
