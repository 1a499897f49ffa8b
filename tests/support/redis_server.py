"""A Redis server of the test's own on a free port, to stop and start again at will
(the shared test Redis is never stopped: other suites use it)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: asyncio.subprocess.Process | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="ai1net-redis-")

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self._dir.name,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        client = Redis.from_url(self.url)
        try:
            async with asyncio.timeout(10):
                while True:
                    try:
                        await client.ping()
                        return
                    except RedisError:
                        await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    async def stop(self, *, keep_data: bool = False) -> None:
        """Stop it; with ``keep_data`` its data is saved and loaded at the next start (as
        if only the network had failed)."""
        if self._process is not None and keep_data:
            client = Redis.from_url(self.url)
            with contextlib.suppress(RedisError):  # the server closes the connection
                await client.shutdown(save=True)
            await client.aclose()
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):  # gone after SHUTDOWN
                self._process.terminate()
            await self._process.wait()
            self._process = None

    async def __aenter__(self) -> RedisServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        self._dir.cleanup()
