"""Wiring: ``build_gateway(settings)`` assembles the server; ``Gateway`` owns its lifecycle."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

# grpc-stubs predate grpc_health's aio module.
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from ai1net.server.auth import AuthGuard
from ai1net.server.changes import ChangeFeed
from ai1net.server.conformance import Checker
from ai1net.server.crypto import CredentialBox, passphrases
from ai1net.server.feedback import FeedbackBoard
from ai1net.server.generate import Generator
from ai1net.server.health import HealthBoard
from ai1net.server.keys import KeyStore
from ai1net.server.load import InFlight
from ai1net.server.metrics import Metrics
from ai1net.server.observe import Observer
from ai1net.server.probes import Prober
from ai1net.server.providers import ProviderClient
from ai1net.server.quota import Quota, build_quota, spent_by_key
from ai1net.server.registry import Registry
from ai1net.server.services.audit import AuditServicer
from ai1net.server.services.generate import GenerateServicer
from ai1net.server.services.keys import KeyServicer
from ai1net.server.services.registry import RegistryServicer
from ai1net.server.services.usage import UsageServicer
from ai1net.server.settings import Settings
from ai1net.server.storage import Database, sqlite_path
from ai1net.server.telemetry import TraceMode
from ai1net.server.tls import server_credentials
from ai1net.server.transport import HttpTransport, Transport
from ai1net.server.usage import Ledger
from ai1net.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    generate_pb2,
    generate_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    usage_pb2,
    usage_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICE_NAMES = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in ((generate_pb2, "GenerateService"), (registry_pb2, "RegistryService"),
                         (usage_pb2, "UsageService"), (keys_pb2, "KeyService"),
                         (audit_pb2, "AuditService")))
SERVER_OPTIONS = (
    ("grpc.so_reuseport", 1),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
)


class ReadinessHealth(health_aio.HealthServicer):  # type: ignore[misc]  # untyped base
    """Standard health; the overall ("") check also proves the database answers."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self._db = db

    async def Check(self, request: Any, context: Any) -> Any:
        if request.service == "":
            try:
                async with asyncio.timeout(2):
                    await self._db.ping()
            except Exception:
                log.warning("readiness: the database does not answer", exc_info=True)
                return health_pb2.HealthCheckResponse(
                    status=health_pb2.HealthCheckResponse.NOT_SERVING)
        return await super().Check(request, context)


class Registrar(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    """Adds servicers to the gRPC server behind the auth guard, and keeps the guarded
    handlers for in-process calls.

    The generated ``add_*_to_server`` functions hand over each service's handlers twice:
    as a generic handler, then as registered method handlers. Only the second are taken,
    guarded, and served by this one generic handler, by full method name. No method is
    registered with grpc.aio: its server waits on one future per registered method for
    every call it takes (``asyncio.wait`` over all of them), and with the gateway's 21
    methods that was 3.8% of a gRPC call's CPU (``python -m bench.sidebyside``).
    """

    def __init__(self, server: aio.Server, guard: AuthGuard) -> None:
        self._guard = guard
        self.handlers: dict[str, Any] = {}
        server.add_generic_rpc_handlers((self,))

    def add_generic_rpc_handlers(self, _handlers: Any) -> None:
        return None  # the same handlers follow as registered method handlers

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        guarded = self._guard.handlers(service, handlers)
        self.handlers.update({f"/{service}/{name}": h for name, h in guarded.items()})

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        return self.handlers.get(details.method)


class _GenericOnly:
    """The server as a generated ``add_*_to_server`` sees it, taking the generic handler
    only (reflection: open to all, and, like every method, not registered)."""

    def __init__(self, server: aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, _service: str, _handlers: Any) -> None:
        return None


@dataclass
class Gateway:
    settings: Settings
    db: Database
    keys: KeyStore
    registry: Registry
    health: HealthBoard
    ledger: Ledger
    transport: Transport
    generator: Generator
    server: aio.Server
    health_servicer: ReadinessHealth
    feed: ChangeFeed
    quota: Quota
    port: int
    # For in-process callers (the bridge in the same process): the guarded method
    # handlers the gRPC server runs, by full method name.
    handlers: dict[str, Any]
    metrics: Metrics
    prober: Prober

    async def start(self) -> None:
        await self.feed.start()
        await self.quota.start()
        await self.ledger.start()
        await self.server.start()
        self.prober.start()
        for name in ("", *SERVICE_NAMES):
            await self.health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def drain(self) -> None:
        """Tell health checkers this process is stopping; it still serves."""
        await self.health_servicer.enter_graceful_shutdown()

    async def stop_serving(self, grace: float | None = None) -> None:
        """Refuse new calls and let calls in flight finish (within ``grace``)."""
        await self.drain()
        await self.server.stop(self.settings.grace_period_s if grace is None else grace)

    async def close(self) -> None:
        """Flush usage and release everything; what fails is logged, never raised, so a
        stop ends cleanly whatever Redis or the database did."""
        for name, closer in (("health probes", self.prober.close),
                             ("ledger", self.ledger.close), ("quota", self.quota.close),
                             ("change feed", self.feed.close),
                             ("transport", self.transport.close), ("database", self.db.close)):
            try:
                await closer()
            except Exception:
                log.exception("could not close the %s cleanly", name)

    async def stop(self, grace: float | None = None) -> None:
        await self.stop_serving(grace)
        await self.close()


def spool_dir(settings: Settings) -> Path | None:
    """Where this process spools usage events; None for an in-memory database."""
    if settings.spool_dir:
        return Path(settings.spool_dir)
    if settings.database_url.startswith("sqlite"):
        database = sqlite_path(settings.database_url)
        return database.parent / f"{database.name}.spool" if database else None
    return Path("ai1net-spool")


async def build_gateway(settings: Settings, *, transport: Transport | None = None,
                        metrics: Metrics | None = None, tracing: TraceMode = TraceMode.OFF,
                        accounting: bool = True, rng: random.Random | None = None) -> Gateway:
    """The gateway. ``tracing`` is what `setup_tracing` made of the environment (its
    provider's ``mode``): with ``FULL`` the RPCs, SQL statements, calls and provider calls
    are spans; ``LIGHT`` makes light spans, so trace context still propagates; ``OFF`` makes
    none. ``accounting=False`` records no usage (a benchmark switch). ``rng`` spreads load
    among near-equal models (tests seed it)."""
    box = CredentialBox(passphrases(settings))  # first: a missing secret stops start-up
    db = Database(settings.database_url)
    if tracing is TraceMode.FULL:
        # Imported here: the instrumentations weigh much of a second of start-up.
        from ai1net.server.instrumentation import instrument_engine

        instrument_engine(db.engine)
    try:
        metrics = metrics or Metrics(shared_dir=settings.metrics_dir)
        return await _assemble(settings, db, box, transport, metrics, tracing, accounting, rng)
    except BaseException:
        await db.close()
        raise


async def _assemble(settings: Settings, db: Database, box: CredentialBox,
                    transport: Transport | None, metrics: Metrics,
                    tracing: TraceMode, accounting: bool,
                    rng: random.Random | None) -> Gateway:
    await db.migrate()
    feed = ChangeFeed(db=db, redis_url=settings.redis_url,
                      poll_interval_s=settings.change_poll_interval_s)
    keys = KeyStore(db=db, notify=feed.publish, catch_up=feed.catch_up)
    await feed.note_position()
    await keys.load()
    if settings.admin_key:
        await keys.ensure(settings.admin_key, role="admin", name="AI1NET_ADMIN_KEY")
    registry = Registry(db=db, box=box, allow_private=settings.allow_private_endpoints,
                        notify=feed.publish)
    await registry.load()
    feed.on("key", keys.reload_one, keys.load)
    feed.on("model", registry.reload_one, registry.load)
    health = HealthBoard()
    ledger = Ledger(db=db, interval=settings.usage_flush_interval_s,
                    batch_size=settings.usage_batch_size, limit=settings.usage_buffer_limit,
                    enabled=accounting, spool_dir=spool_dir(settings),
                    link_calls=tracing is TraceMode.FULL,
                    retention_days=settings.usage_retention_days)
    feedback = FeedbackBoard(db=db, notify=feed.publish)
    await feedback.load()
    feed.on("feedback", feedback.reload_one, feedback.load)
    # A call holds at most one provider connection, so the pool's per-host cap is the
    # process's in-flight limit: it never refuses what that limit and the models' own
    # max_concurrency admit (many models may share one provider host).
    transport = transport or HttpTransport(allow_private=settings.allow_private_endpoints,
                                           limit_per_host=settings.max_in_flight,
                                           record_spans=tracing is TraceMode.FULL)
    providers = ProviderClient(transport=transport)
    quota = build_quota(settings.redis_url, load_spent=functools.partial(spent_by_key, db))
    observer = Observer(metrics=metrics, tracing=tracing)
    generator = Generator(registry=registry, providers=providers, health=health, ledger=ledger,
                          quota=quota, observer=observer,
                          in_flight=InFlight(limit=settings.max_in_flight), rng=rng,
                          rated=feedback.of)
    metrics.watch_usage_buffer(lambda: ledger.depth)
    status = getattr(quota, "status", None)  # the shared quota's, with Redis
    if status is not None:
        metrics.watch_quota(status)
    metrics.watch_circuits(health.circuit_states)
    guard = AuthGuard(keys=keys, continue_traces=tracing is not TraceMode.FULL)
    server = aio.server(interceptors=_interceptors(tracing), options=SERVER_OPTIONS)
    recorder = Registrar(server, guard)
    handlers = recorder.handlers
    # Duck-typed: it has the two methods the generated add_*_to_server functions call.
    registrar = cast(aio.Server, recorder)
    generate_pb2_grpc.add_GenerateServiceServicer_to_server(
        GenerateServicer(generator=generator), registrar)
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(
        RegistryServicer(registry=registry, stats=health.stats,
                         checker=Checker(transport=transport, calls=3), rated=feedback.of),
        registrar)
    keys_pb2_grpc.add_KeyServiceServicer_to_server(KeyServicer(keys=keys, quota=quota), registrar)
    usage_pb2_grpc.add_UsageServiceServicer_to_server(
        UsageServicer(db=db, ledger=ledger, feedback=feedback), registrar)
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(db=db), registrar)
    health_servicer = ReadinessHealth(db)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registrar)
    # What reflection.enable_server_reflection does, without registering the method.
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer(  # type: ignore[attr-defined]  # public: in __all__
            (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME)),
        cast(aio.Server, _GenericOnly(server)))
    port = server.add_secure_port(settings.grpc_addr, server_credentials(
        cert=settings.tls_cert, key=settings.tls_key, client_ca=settings.tls_client_ca)) \
        if settings.tls_cert and settings.tls_key else server.add_insecure_port(settings.grpc_addr)
    return Gateway(settings=settings, db=db, keys=keys, registry=registry, health=health,
                   ledger=ledger, transport=transport, generator=generator, server=server,
                   health_servicer=health_servicer, feed=feed, quota=quota, port=port,
                   handlers=handlers, metrics=metrics,
                   prober=Prober(registry=registry, health=health, transport=transport,
                                 period_s=settings.health_probe_s,
                                 concurrency=settings.health_probe_concurrency,
                                 observer=observer))


def local_target(addr: str, port: int) -> str:
    """Where a client on this machine reaches a server bound to ``addr``."""
    host = addr.rpartition(":")[0].strip("[]")
    if host in ("", "0.0.0.0", "::"):  # noqa: S104
        host = "127.0.0.1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _interceptors(tracing: TraceMode) -> list[aio.ServerInterceptor[Any, Any]] | None:
    """Server spans for every RPC when spans are exported; else none (the guard continues
    the caller's trace context itself)."""
    if tracing is not TraceMode.FULL:
        return None
    # Imported here: the instrumentations weigh much of a second of start-up.
    from ai1net.server.instrumentation import grpc_server_interceptor

    return [grpc_server_interceptor()]
