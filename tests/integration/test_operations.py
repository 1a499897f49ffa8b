"""Operations surface: health, readiness, reflection over gRPC; the HTTP probes."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.conftest import Harness


async def test_grpc_health_and_reflection(harness: Harness):
    health = health_pb2_grpc.HealthStub(harness.channel)
    for service in ("", "ai1net.v1.GenerateService", "ai1net.v1.RegistryService",
                    "ai1net.v1.UsageService", "ai1net.v1.KeyService"):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(harness.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = [r async for r in reflection.ServerReflectionInfo(iter([request]), timeout=5)]
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"ai1net.v1.GenerateService", "ai1net.v1.RegistryService", "ai1net.v1.UsageService",
            "ai1net.v1.KeyService", "grpc.health.v1.Health"} <= names


async def test_http_probes_need_no_key(harness: Harness):
    for path, expected in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})):
        async with harness.http.get(f"{harness.http_url}{path}") as resp:
            assert resp.status == 200
            assert await resp.json() == expected
    async with harness.http.get(f"{harness.http_url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")


async def test_unknown_grpc_method_is_unimplemented(harness: Harness):
    """Every method is served by one generic handler (server/app.py Registrar): one it
    does not hold is UNIMPLEMENTED, and the server goes on."""
    call = harness.channel.unary_unary("/ai1net.v1.GenerateService/NoSuchMethod")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    health = health_pb2_grpc.HealthStub(harness.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
