"""HAProxy in front of gateway processes, as deploy/haproxy.cfg puts it (tests only)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import shutil
from pathlib import Path

import pytest

from tests.support.gateway_process import free_port

CONFIG = """
global
    stats socket {socket} mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    # A loaded machine may take a while to answer a check: slow is not down.
    timeout check 2s
    retry-on conn-failure
    retries 3
    option redispatch 1
    # A refused connection takes the server out at once, before its next check.
    default-server check inter 500ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down

frontend http_in
    bind 127.0.0.1:{http}
    use_backend gateways_http_alive if {{ nbsrv(gateways_http) eq 0 }}
    default_backend gateways_http

frontend grpc_in
    bind 127.0.0.1:{grpc} proto h2
    use_backend gateways_grpc_alive if {{ nbsrv(gateways_grpc) eq 0 }}
    default_backend gateways_grpc

backend gateways_http
    balance leastconn
    option httpchk GET /readyz
{http_servers}

backend gateways_grpc
    balance leastconn
    option httpchk GET /readyz
{grpc_servers}

backend gateways_http_alive
    balance leastconn
    option httpchk GET /healthz
{http_servers}

backend gateways_grpc_alive
    balance leastconn
    option httpchk GET /healthz
{grpc_servers}
"""
HTTP_SERVER = "    server r{i} 127.0.0.1:{http}"
GRPC_SERVER = "    server r{i} 127.0.0.1:{grpc} proto h2 check port {http} check-proto h1"


class HAProxy:
    def __init__(self, tmp_path: Path, replicas: list[tuple[int, int]]) -> None:
        if shutil.which("haproxy") is None:
            pytest.skip("haproxy is not installed (.ci/run installs it)")
        self.http_port, self.grpc_port = free_port(), free_port()
        self.socket = tmp_path / "haproxy.sock"
        self.config = tmp_path / "haproxy.cfg"
        self.config.write_text(CONFIG.format(
            socket=self.socket, http=self.http_port, grpc=self.grpc_port,
            http_servers="\n".join(HTTP_SERVER.format(i=i, http=h)
                                   for i, (h, _) in enumerate(replicas)),
            grpc_servers="\n".join(GRPC_SERVER.format(i=i, http=h, grpc=g)
                                   for i, (h, g) in enumerate(replicas))))
        self.url = f"http://127.0.0.1:{self.http_port}"
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> HAProxy:
        self._process = await asyncio.create_subprocess_exec(
            "haproxy", "-db", "-f", str(self.config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        async with asyncio.timeout(10):
            while not self.socket.exists():
                await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.terminate()
            await self._process.wait()

    async def states(self, backend: str = "gateways_http") -> dict[str, str]:
        """A back end's servers and their state (UP, DOWN, ...)."""
        reader, writer = await asyncio.open_unix_connection(str(self.socket))
        writer.write(b"show stat\n")
        await writer.drain()
        data = await reader.read()
        writer.close()
        rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
        return {row["svname"]: row["status"].split()[0] for row in rows
                if row["pxname"] == backend and row["svname"] not in
                ("FRONTEND", "BACKEND")}

    async def wait_state(self, server: str, state: str, within: float = 30.0) -> None:
        """Until the server is in ``state`` in both the HTTP and the gRPC back end."""
        async with asyncio.timeout(within):
            for backend in ("gateways_http", "gateways_grpc"):
                while (await self.states(backend)).get(server) != state:
                    await asyncio.sleep(0.05)
