"""Running the gateway: gRPC server and HTTP bridge on one loop, signals, drain, workers.

The server's half is imported only when it runs (`start_gateway`): a ``--bridge-only``
process never loads its storage, Redis client or encryption.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ai1net.bridge.app import DRAINING, build_app
from ai1net.bridge.backend import Backend
from ai1net.server.accesslog import configure_logging
from ai1net.server.benchswitches import BenchSwitches
from ai1net.server.memory import settle_heap
from ai1net.server.settings import Settings
from ai1net.server.telemetry import TraceMode
from ai1net.server.tls import channel_credentials, server_ssl_context
from ai1net.server.tracing import setup_tracing

if TYPE_CHECKING:
    from ai1net.server.app import Gateway

log = logging.getLogger(__name__)

WORKER_ENV = "AI1NET_WORKER_CHILD"
LISTEN_BACKLOG = 4096



async def start_gateway(settings: Settings, *, tracing: TraceMode,
                        accounting: bool) -> tuple[Gateway, str]:
    """The gRPC server, started, and the target that reaches it."""
    # Imported here: a --bridge-only process never runs (nor loads) the server's half.
    from ai1net.server.app import build_gateway, local_target

    gateway = await build_gateway(settings, tracing=tracing, accounting=accounting)
    await gateway.start()
    return gateway, local_target(settings.grpc_addr, gateway.port)


async def start_bridge(settings: Settings, target: str | None = None,
                       gateway: Gateway | None = None,
                       in_process: bool = True,
                       continue_traces: bool = False) -> tuple[web.AppRunner, int]:
    """The HTTP bridge: in process beside ``gateway``, or a gRPC client of ``target``.

    Beside a gateway, its /metrics shows the gateway's series either way.
    """
    backend = Backend.in_process(handlers=gateway.handlers) \
        if gateway is not None and in_process else None
    credentials = channel_credentials(
        ca_file=settings.ca_file, client_cert=settings.client_cert,
        client_key=settings.client_key) \
        if backend is None and (settings.tls or settings.ca_file or settings.client_cert) else None
    app = build_app(target=None if backend else target, backend=backend,
                    max_body_bytes=settings.max_body_bytes,
                    metrics_registry=gateway.metrics.registry if gateway else None,
                    continue_traces=continue_traces, credentials=credentials,
                    transport=gateway.transport if gateway is not None else None,
                    allow_private_endpoints=settings.allow_private_endpoints)
    runner = web.AppRunner(app, shutdown_timeout=settings.grace_period_s,
                           handler_cancellation=True, access_log=None)
    await runner.setup()
    host, _, port = settings.http_addr.rpartition(":")
    ssl_context = server_ssl_context(cert=settings.tls_cert, key=settings.tls_key) \
        if settings.tls_cert and settings.tls_key else None
    # A burst of new connections waits in the kernel (up to net.core.somaxconn) instead of
    # having its SYNs dropped and retried a second later.
    site = web.TCPSite(runner, host.strip("[]") or None, int(port), backlog=LISTEN_BACKLOG,
                       reuse_port=settings.workers > 1, ssl_context=ssl_context)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def serve(settings: Settings, *, demo: bool = False, grpc_only: bool = False,
                bridge_only: bool = False, switches: BenchSwitches | None = None,
                ready: Callable[[str], Awaitable[None] | None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (exit status 0); ``switches``
    turn accounting or tracing off for the benchmark."""
    configure_logging(settings.log_level)
    raise_open_file_limit()
    # Spans are made only when exported; otherwise trace context alone travels on.
    switches = switches or BenchSwitches()
    tracing = setup_tracing().mode if switches.tracing else TraceMode.OFF
    if tracing is TraceMode.FULL:
        # Imported here: the instrumentations weigh much of a second of start-up.
        from ai1net.server.instrumentation import instrument

        instrument()  # before any aiohttp app or client session exists
    stop, hurry = asyncio.Event(), asyncio.Event()  # the first signal; a second one
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: hurry.set() if stop.is_set() else stop.set())
    if demo:
        settings = dataclasses.replace(settings, allow_private_endpoints=True)
    metrics_dir = shared_metrics_dir(settings)
    if metrics_dir is not None:
        settings = dataclasses.replace(settings, metrics_dir=metrics_dir.name)
    gateway: Gateway | None = None
    workers: list[subprocess.Popen[bytes]] = []
    runner: web.AppRunner | None = None
    provider: web.AppRunner | None = None
    http_port = 0
    try:
        target = settings.grpc_target or ""
        if not bridge_only:
            gateway, target = await start_gateway(settings, tracing=tracing,
                                                  accounting=switches.accounting)
            log.info("gRPC listening on %s", target)
        if not grpc_only:
            runner, http_port = await start_bridge(settings, target, gateway,
                                                   continue_traces=tracing is not TraceMode.FULL)
            log.info("HTTP bridge listening on port %d", http_port)
        if demo and gateway is not None:
            # Imported here: only `serve --demo` runs the demo provider.
            from ai1net.server.demo_setup import set_up_demo

            provider, banner = await set_up_demo(gateway, settings, grpc_target=target,
                                                 http_port=http_port)
            print(banner, flush=True)
        workers = start_workers(settings)
        settle_heap()
        await stop.wait()
        await drain(settings, gateway, runner, workers, hurry)
    finally:
        await stop_workers(workers)
        await asyncio.gather(*(
            ([runner.cleanup()] if runner is not None else [])
            + ([gateway.stop_serving()] if gateway is not None else [])))
        if gateway is not None:
            await gateway.close()
        if provider is not None:
            await provider.cleanup()
        if metrics_dir is not None:
            metrics_dir.cleanup()


async def drain(settings: Settings, gateway: Gateway | None, runner: web.AppRunner | None,
                workers: list[subprocess.Popen[bytes]], hurry: asyncio.Event) -> None:
    """Not ready at once (/readyz and gRPC health), still serving for the drain delay (a
    second signal cuts it short), so load balancers move away before the listeners close.
    Workers drain alongside."""
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    if runner is not None:
        runner.app[DRAINING].set()
    if gateway is not None:
        await gateway.drain()
    log.info("stopping: not ready; serving %.1fs more, then finishing calls in flight "
             "(grace %.0fs)", settings.drain_delay_s, settings.grace_period_s)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(hurry.wait(), settings.drain_delay_s)


def shared_metrics_dir(settings: Settings) -> tempfile.TemporaryDirectory[str] | None:
    """For the first of several workers, a fresh directory where they all write their
    metrics (each scrape sums them); None for one process, a worker, or a directory set in
    AI1NET_METRICS_DIR (emptied here, so that counts start from zero)."""
    if os.environ.get(WORKER_ENV):
        return None
    if settings.metrics_dir is not None:
        Path(settings.metrics_dir).mkdir(parents=True, exist_ok=True)
        for stale in Path(settings.metrics_dir).glob("*.db"):
            stale.unlink()
        return None
    if settings.workers <= 1:
        return None
    return tempfile.TemporaryDirectory(prefix="ai1net-metrics-")


def raise_open_file_limit() -> int:
    """The soft limit on open files raised to the hard one (allowed to any process): each
    HTTP stream holds two sockets, the caller's and the provider's, and a common soft limit
    is 1,024. Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):  # a sandbox may refuse even that
        log.warning("open files: could not raise the limit of %d to %d", soft, hard)
        return soft
    log.info("open files: limit raised from %d to %d", soft, hard)
    return hard


def start_workers(settings: Settings) -> list[subprocess.Popen[bytes]]:
    """The other N-1 worker processes, sharing this one's ports (SO_REUSEPORT).

    They start once this process is ready, so the schema and the demo models exist.
    """
    if settings.workers <= 1 or os.environ.get(WORKER_ENV):
        return []
    if not settings.redis_url:
        log.warning("--workers %d without a Redis URL: rate limits and budgets are per "
                    "process, not shared", settings.workers)
    env = {**os.environ, **settings.to_env(), WORKER_ENV: "1"}
    command = [sys.executable, "-m", "ai1net.server.cli", "serve"]
    # Our own interpreter running our own module: nothing here comes from a caller.
    return [subprocess.Popen(command, env=env) for _ in range(settings.workers - 1)]  # noqa: S603


async def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        await asyncio.to_thread(worker.wait)
