"""The secret that encrypts provider credentials (CONTRACT §5): required off SQLite, shared
by replicas, several at once while rolling a new one out, and rotated by the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import pytest

from ai1net.server.app import build_gateway
from tests.conftest import ROOT, gateway_settings, run_harness, two_replicas
from tests.integration.test_cli import cli
from tests.integration.test_secrets import canary, last_authorization

harness_context = contextlib.asynccontextmanager(run_harness)


async def test_a_postgres_deployment_without_a_secret_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI1NET_SECRET_KEY")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ai1net.server.cli", "serve",
        "--database-url", "postgresql://nobody@127.0.0.1:9/none",
        "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", cwd=ROOT, env=env,
        stdout=-1, stderr=-1)
    out, err = await process.communicate()
    assert process.returncode == 1, (out, err)
    assert b"AI1NET_SECRET_KEY or AI1NET_SECRET_KEY_FILE" in err, err


async def test_a_secret_from_a_file_reads_what_the_same_secret_in_a_variable_sealed(
        database_url: str, provider_url: str, tmp_path: Path):
    credential = canary()
    secret_file = tmp_path / "secret"
    secret_file.write_text("shared-passphrase\n")
    by_file = gateway_settings(database_url, secret_key=None, secret_key_file=str(secret_file))
    async with harness_context(by_file) as harness:
        provider = await harness.key("provider")
        await harness.register(provider, name="m-file", type="text",
                               endpoint=f"{provider_url}/echo", auth_type="bearer",
                               credentials={"api_key": credential})
    by_variable = gateway_settings(database_url, secret_key="shared-passphrase")
    async with harness_context(by_variable) as harness:
        status, _, body = await harness.generate(await harness.key("consumer"),
                                                 model="m-file", input="hi")
        assert status == 200, body
        assert await last_authorization(provider_url, harness.http) == f"Bearer {credential}"


async def test_rotation_keeps_every_credential_readable(database_url: str, provider_url: str):
    credentials = {f"m-rot-{n}": canary() for n in range(3)}
    async with harness_context(gateway_settings(database_url, secret_key="old")) as harness:
        provider = await harness.key("provider")
        for name, credential in credentials.items():
            await harness.register(provider, name=name, type="text",
                                   endpoint=f"{provider_url}/echo", auth_type="bearer",
                                   credentials={"api_key": credential})
        async with harness.http.delete(f"{harness.http_url}/v1/models/m-rot-2",
                                       headers={"x-api-key": provider}) as resp:
            assert resp.status == 204
        # While rolling out: every process has NEW,OLD; the running one keeps serving.
        code, out = await cli("secrets", "--database-url", database_url, "rotate",
                              env={"AI1NET_SECRET_KEY": "new,old"})
        assert code == 0, out
        assert "re-encrypted 3 stored credentials" in out
    async with harness_context(gateway_settings(database_url, secret_key="new")) as harness:
        consumer = await harness.key("consumer")
        for name in ("m-rot-0", "m-rot-1"):
            status, _, body = await harness.generate(consumer, model=name, input="hi")
            assert status == 200, body
            assert await last_authorization(provider_url, harness.http) == \
                f"Bearer {credentials[name]}"
    with pytest.raises(ValueError, match="AI1NET_SECRET_KEY"):
        await build_gateway(gateway_settings(database_url, secret_key="old"))


async def test_replicas_sharing_the_secret_read_each_others_credentials(provider_url: str):
    credential = canary()
    async with two_replicas(redis=False) as (one, two):
        provider = await one.key("provider")
        await one.register(provider, name="m-shared", type="text",
                           endpoint=f"{provider_url}/echo", auth_type="bearer",
                           credentials={"api_key": credential})
        consumer = await one.key("consumer")
        await two.gateway.feed.reload_everything()  # not waiting for its next poll
        status, _, body = await two.generate(consumer, model="m-shared", input="hi")
        assert status == 200, body
        assert await last_authorization(provider_url, two.http) == f"Bearer {credential}"
