"""TLS on both listeners (CONTRACT §5): HTTPS and gRPC over TLS work, clear text does not;
client certificates on gRPC; a bridge run apart and the CLI connect over TLS."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc import aio

from ai1net.server.app import Gateway, build_gateway, local_target
from ai1net.server.runner import start_bridge
from ai1net.server.settings import Settings
from ai1net.server.tls import channel_credentials
from ai1net.v1 import keys_pb2, keys_pb2_grpc
from tests.conftest import ADMIN_KEY, bearer, gateway_settings
from tests.integration.test_cli import cli
from tests.support.certs import Certificates, make_certificates

ADMIN = (("x-api-key", ADMIN_KEY),)


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path)


@pytest.fixture
def tls_settings(sqlite_url: str, certs: Certificates) -> Settings:
    return gateway_settings(sqlite_url, tls_cert=str(certs.server_cert),
                            tls_key=str(certs.server_key))


@contextlib.asynccontextmanager
async def serving(settings: Settings, *, bridge: bool = True,
                  ) -> AsyncIterator[tuple[Gateway, int, str]]:
    """A gateway, and (unless not ``bridge``) its bridge in process: (gateway, HTTP port,
    gRPC target)."""
    gateway = await build_gateway(settings)
    await gateway.start()
    target = local_target(settings.grpc_addr, gateway.port)
    runner = None
    try:
        http_port = 0
        if bridge:
            runner, http_port = await start_bridge(settings, target, gateway)
        yield gateway, http_port, target
    finally:
        if runner is not None:
            await runner.cleanup()
        await gateway.stop(grace=1)


async def list_keys(channel: aio.Channel) -> keys_pb2.ListKeysResponse:
    stub = keys_pb2_grpc.KeyServiceStub(channel)
    return await stub.ListKeys(keys_pb2.ListKeysRequest(), metadata=ADMIN, timeout=5)


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


async def test_https_and_grpc_over_tls_work_and_clear_text_does_not(
        tls_settings: Settings, certs: Certificates):
    async with serving(tls_settings) as (_, http_port, target), aiohttp.ClientSession() as http:
        async with http.get(f"https://127.0.0.1:{http_port}/v1/keys", headers=bearer(ADMIN_KEY),
                            ssl=trusting(certs.ca)) as resp:
            assert resp.status == 200
        async with http.get(f"https://localhost:{http_port}/healthz",
                            ssl=trusting(certs.ca)) as resp:
            assert resp.status == 200
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{http_port}/healthz"):
                pass
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with http.get(f"https://127.0.0.1:{http_port}/healthz",
                                ssl=trusting(certs.other_ca)):
                pass

        async with aio.secure_channel(target, channel_credentials(ca_file=str(certs.ca))) as ch:
            assert any(k.name == "AI1NET_ADMIN_KEY" for k in (await list_keys(ch)).keys)
        for channel in (aio.insecure_channel(target),
                        aio.secure_channel(target, channel_credentials(
                            ca_file=str(certs.other_ca)))):
            async with channel:
                with pytest.raises(aio.AioRpcError) as failure:
                    await list_keys(channel)
                assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_grpc_requires_a_client_certificate_from_the_client_ca(
        tls_settings: Settings, certs: Certificates):
    settings = replace(tls_settings, tls_client_ca=str(certs.ca))
    async with serving(settings, bridge=False) as (_, _port, target):
        with_cert = channel_credentials(ca_file=str(certs.ca), client_cert=str(certs.client_cert),
                                        client_key=str(certs.client_key))
        async with aio.secure_channel(target, with_cert) as channel:
            assert (await list_keys(channel)).keys
        async with aio.secure_channel(target, channel_credentials(ca_file=str(certs.ca))) as ch:
            with pytest.raises(aio.AioRpcError) as failure:
                await list_keys(ch)
            assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_bridge_apart_calls_the_grpc_server_over_tls(tls_settings: Settings,
                                                             certs: Certificates):
    grpc_settings = replace(tls_settings, tls_client_ca=str(certs.ca))
    async with serving(grpc_settings, bridge=False) as (_, _port, target):
        bridge_settings = replace(
            tls_settings, tls=True, ca_file=str(certs.ca), client_cert=str(certs.client_cert),
            client_key=str(certs.client_key))
        clear_settings = replace(tls_settings, tls=False)
        tls_runner, tls_port = await start_bridge(bridge_settings, target)
        clear_runner, clear_port = await start_bridge(clear_settings, target)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"https://127.0.0.1:{tls_port}/v1/keys",
                                    headers=bearer(ADMIN_KEY), ssl=trusting(certs.ca)) as resp:
                    assert resp.status == 200
                async with http.get(f"https://127.0.0.1:{clear_port}/readyz",
                                    ssl=trusting(certs.ca)) as resp:
                    assert resp.status == 503  # it cannot reach the gRPC server in clear
        finally:
            await tls_runner.cleanup()
            await clear_runner.cleanup()


async def test_the_cli_connects_over_tls(tls_settings: Settings, certs: Certificates):
    async with serving(tls_settings, bridge=False) as (_, _port, target):
        env = {"AI1NET_API_KEY": ADMIN_KEY, "AI1NET_GRPC_TARGET": target}
        code, out = await cli("models", "list", "--tls", "--ca-file", str(certs.ca), env=env)
        assert code == 0, out
        code, out = await cli("models", "list", env={**env, "AI1NET_TLS": "1",
                                                     "AI1NET_CA_FILE": str(certs.ca)})
        assert code == 0, out
        code, out = await cli("models", "list", env=env)
        assert code == 1
        assert "UNAVAILABLE" in out
