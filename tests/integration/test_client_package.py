"""``pip install ./clients/python`` into a fresh virtual environment: the client installs on its
own, without a single dependency of the server, and works from there against a gateway."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from ai1net.client import AsyncClient
from tests.conftest import ADMIN_KEY, ROOT, gateway_settings, run_harness

SERVER_ONLY = {"aiohttp", "sqlalchemy", "sqlmodel", "asyncpg", "aiosqlite", "redis", "alembic",
               "opentelemetry-sdk", "opentelemetry-api", "cryptography", "orjson", "uvloop",
               "prometheus-client", "grpcio-status", "grpcio-health-checking"}

USE_THE_CLIENT = """
import asyncio, importlib.util, json, sys
from ai1net.client import AsyncClient, Client, NotFound

target, key = sys.argv[1], sys.argv[2]
with Client(target, api_key=key) as client:
    answer = client.generate("from a venv", model="venv-model")
    try:
        client.get_model("nope")
    except NotFound as error:
        missing = error.reason

async def names():
    async with AsyncClient(target, api_key=key) as client:
        return [model.name for model in await client.list_models()]

print(json.dumps({"output": answer.output, "cost_nanos": answer.cost_nanos, "missing": missing,
                  "names": asyncio.run(names()),
                  "server": importlib.util.find_spec("ai1net.server") is not None,
                  "bridge": importlib.util.find_spec("ai1net.bridge") is not None}))
"""


async def run(*command: str | Path, cwd: Path) -> str:
    """Run a command without blocking the gateway on this loop; its output, or fail."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, env=environment, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


@pytest.mark.timeout(600)
async def test_the_client_installs_alone_and_works_from_a_fresh_venv(tmp_path: Path,
                                                                      provider_url: str):
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    # Without pip inside: this environment's pip installs into it (--python), which is faster.
    await run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    pip = (sys.executable, "-m", "pip", "--python", str(python))
    # A clean copy: a build/ folder left in the work tree could hold stale modules.
    source = shutil.copytree(ROOT / "clients" / "python", tmp_path / "client-source",
                             ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    await run(*pip, "install", "--quiet", source, cwd=tmp_path)

    installed = {p["name"].lower() for p in json.loads(
        await run(*pip, "list", "--format", "json", cwd=tmp_path))}
    assert {"ai1net-client", "grpcio", "protobuf", "googleapis-common-protos"} <= installed
    assert installed & SERVER_ONLY == set()

    async for gateway in run_harness(gateway_settings(f"sqlite:///{tmp_path / 'g.db'}")):
        async with AsyncClient(gateway.grpc_target, api_key=ADMIN_KEY) as admin:
            await admin.register_model({"name": "venv-model", "type": "text",
                                        "endpoint": provider_url + "/ok"})
            consumer = (await admin.create_key("consumer", name="venv")).key
        assert consumer
        script = tmp_path / "use_client.py"
        script.write_text(USE_THE_CLIENT)
        result = json.loads(await run(python, script, gateway.grpc_target, consumer,
                                      cwd=tmp_path))
    assert result == {"output": "ok: from a venv", "cost_nanos": 0, "missing": "NOT_FOUND",
                      "names": ["venv-model"], "server": False, "bridge": False}


@pytest.mark.timeout(300)
async def test_the_repository_distribution_still_carries_the_client(tmp_path: Path):
    """``pip install .`` installs the server, the bridge and the client in one command."""
    source = shutil.copytree(ROOT, tmp_path / "source", ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "*.db"))
    await run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
              tmp_path / "wheels", source, cwd=tmp_path)
    [wheel] = (tmp_path / "wheels").glob("ai1net-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"ai1net/client/sync.py", "ai1net/client/aio.py", "ai1net/client/py.typed",
            "ai1net/v1/generate_pb2.py", "ai1net/server/cli.py", "ai1net/bridge/app.py"} <= names
