"""The bridge's view of the gRPC server: one channel, its stubs, and per-call metadata."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web
from grpc import aio
from grpc_health.v1 import health_pb2_grpc
from opentelemetry import propagate

from ai1net.bridge.errors import invalid
from ai1net.bridge.local import LocalStub
from ai1net.server.rules import REQUEST_TIMEOUT_MS
from ai1net.v1 import (
    audit_pb2_grpc,
    generate_pb2_grpc,
    keys_pb2_grpc,
    registry_pb2_grpc,
    usage_pb2_grpc,
)

REQUEST_ID = web.RequestKey("request_id", str)
GRPC_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])")  # ASCII digits, as gRPC writes them
GRPC_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)


@dataclass(frozen=True, slots=True)
class Backend:
    """The stubs the handlers call: over a gRPC channel, or in process (no channel)."""

    # The *AsyncStub classes exist only in the generated .pyi: an aio channel makes the
    # plain Stub constructors return them (annotations are strings, never evaluated).
    channel: aio.Channel | None
    generate: generate_pb2_grpc.GenerateServiceAsyncStub
    registry: registry_pb2_grpc.RegistryServiceAsyncStub
    keys: keys_pb2_grpc.KeyServiceAsyncStub
    usage: usage_pb2_grpc.UsageServiceAsyncStub
    health: health_pb2_grpc.HealthStub
    audit: audit_pb2_grpc.AuditServiceAsyncStub

    @classmethod
    def connect(cls, target: str,
                credentials: grpc.ChannelCredentials | None = None) -> Backend:
        """Over a channel to ``target``: TLS with ``credentials``, else clear text."""
        # No OpenTelemetry client interceptor: it awaits unary calls inside its own task,
        # so cancelling the call (a client hanging up) would not reach the server and the
        # provider call would run on. call_metadata() carries the trace context instead.
        channel = aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS) \
            if credentials is not None else aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        return cls(channel=channel,
                   generate=generate_pb2_grpc.GenerateServiceStub(channel),
                   registry=registry_pb2_grpc.RegistryServiceStub(channel),
                   keys=keys_pb2_grpc.KeyServiceStub(channel),
                   usage=usage_pb2_grpc.UsageServiceStub(channel),
                   health=health_pb2_grpc.HealthStub(channel),
                   audit=audit_pb2_grpc.AuditServiceStub(channel))

    @classmethod
    def in_process(cls, *, handlers: dict[str, Any]) -> Backend:
        """Stubs calling this process's guarded method handlers (`Gateway.handlers`)."""

        def stub(service: str) -> Any:
            return LocalStub(service, handlers)

        return cls(channel=None, generate=stub("ai1net.v1.GenerateService"),
                   registry=stub("ai1net.v1.RegistryService"),
                   keys=stub("ai1net.v1.KeyService"), usage=stub("ai1net.v1.UsageService"),
                   health=stub("grpc.health.v1.Health"), audit=stub("ai1net.v1.AuditService"))

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close(grace=None)


BACKEND = web.AppKey("backend", Backend)


def call_metadata(request: web.Request) -> tuple[tuple[str, str], ...]:
    """The caller's key (either header style) and the request id, as gRPC metadata."""
    metadata = [("x-request-id", request[REQUEST_ID])]
    for header in ("authorization", "x-api-key"):
        value = request.headers.get(header)
        if value and value.isascii() and value.isprintable():
            metadata.append((header, value))
    if request.app[BACKEND].channel is not None:  # in process, the context is the same one
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the current context: the bridge's span, or the caller's
        metadata.extend((k, v) for k, v in carrier.items() if v.isascii())
    return tuple(metadata)


def call_timeout(request: web.Request) -> float | None:
    """Seconds from ``x-request-timeout-ms`` or gRPC-style ``grpc-timeout``; None if unset."""
    raw = request.headers.get("x-request-timeout-ms")
    if raw is not None:
        try:
            millis = float(raw) if raw.isascii() else -1.0
        except ValueError:
            millis = -1.0
        if not REQUEST_TIMEOUT_MS.accepts(millis):
            raise invalid("x-request-timeout-ms", REQUEST_TIMEOUT_MS.explain())
        return millis / 1000
    raw = request.headers.get("grpc-timeout")
    if raw is not None:
        match = GRPC_TIMEOUT.fullmatch(raw.strip())
        if not match:
            raise invalid("grpc-timeout", "must look like 500m, 2S or 1M")
        return int(match[1]) * GRPC_UNITS[match[2]]
    return None
