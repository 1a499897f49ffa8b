"""The command line against a real database and a real gateway."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, gateway_settings, run_harness


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ai1net.server.cli", *args, cwd=ROOT,
        env={**os.environ, **(env or {})}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    return process.returncode or 0, out.decode() + err.decode()


@pytest.mark.timeout(180)  # a dozen CLI processes, each importing the server
async def test_keys_models_and_generate_from_the_command_line(tmp_path: Path,
                                                              provider_url: str):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"AI1NET_SECRET_KEY": "test-secret-passphrase"}
    code, out = await cli("keys", "--database-url", url, "create", "--role", "provider",
                          "--name", "cli-provider", env=env)
    assert code == 0, out
    provider_key = json.loads(out[out.index("{"):])["key"]
    async for harness in run_harness(gateway_settings(url)):
        spec = tmp_path / "model.json"
        spec.write_text(json.dumps({"name": "cli-model", "type": "text",
                                    "endpoint": provider_url + "/ok"}))
        client_env = {"AI1NET_API_KEY": provider_key, "AI1NET_GRPC_ADDR": harness.grpc_target}
        code, out = await cli("models", "register", str(spec), env=client_env)
        assert code == 0, out
        assert '"name": "cli-model"' in out
        code, out = await cli("models", "list", env=client_env)
        assert "cli-model" in out
        code, out = await cli("generate", "hello", "--model", "cli-model", env=client_env)
        assert code == 0, out
        assert "ok: hello" in out
        code, out = await cli("generate", "hello", "--model", "cli-model", "--stream",
                              env=client_env)
        assert code == 0, out
        assert "ok: hello" in out
        code, out = await cli("models", "get", "nope", env=client_env)
        assert code == 1
        assert "NOT_FOUND" in out
        code, out = await cli("usage", "--group-by", "model", env=client_env)
        assert code == 0, out
        row = next(line.split() for line in out.splitlines() if line.startswith("cli-model"))
        assert row[1:3] == ["2", "0"]  # requests, errors: one unary call and one stream
        code, out = await cli("models", "delete", "cli-model", env=client_env)
        assert (code, out.strip()) == (0, "deleted cli-model")
        code, out = await cli("generate", "hi", "--model", "m", "--ca-file",
                              str(tmp_path / "missing.pem"), env=client_env)
        assert code == 1
        assert "missing.pem" in out
    code, out = await cli("keys", "--database-url", url, "list", env=env)
    assert "cli-provider" in out
    assert provider_key not in out


async def test_a_key_written_straight_to_the_database_works_at_once(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    async for harness in run_harness(gateway_settings(url)):
        code, out = await cli("keys", "--database-url", url, "create", "--role", "admin",
                              env={"AI1NET_SECRET_KEY": "test-secret-passphrase"})
        assert code == 0, out
        key = json.loads(out[out.index("{"):])["key"]
        async with harness.http.get(f"{harness.http_url}/v1/keys",
                                    headers={"x-api-key": key}) as resp:
            assert resp.status == 200
        feed = harness.gateway.feed
        reloads = 0
        real_reload = feed.reload_everything

        async def counted_reload(real_reload=real_reload) -> None:
            nonlocal reloads
            reloads += 1
            await real_reload()

        feed.reload_everything = counted_reload  # type: ignore[method-assign]
        for n in range(20):  # unknown keys cannot make the gateway reload anything
            async with harness.http.get(f"{harness.http_url}/v1/models",
                                        headers={"x-api-key": f"ai1_unknown{n}"}) as resp:
                assert resp.status == 401
        assert reloads == 0
