"""AI1NET as a system under test: started on a fresh SQLite database, set up, stopped."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.passes import SUT_CORE
from bench.procs import Service, free_port, http_status, spawn, wait_http

MODEL = "bench"


@dataclass(slots=True)
class Gateway:
    service: Service
    http_url: str
    grpc_target: str
    startup_s: float
    data_dir: Path

    def stop(self) -> None:
        self.service.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def post(self, path: str, key: str, body: dict[str, Any]) -> tuple[int, Any]:
        status, raw = http_status(f"{self.http_url}{path}", method="POST",
                                  body=orjson.dumps(body), timeout=10,
                                  headers={"Authorization": f"Bearer {key}",
                                           "Content-Type": "application/json"})
        try:
            return status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return status, raw[:300]

    def prepare(self, admin_key: str, mock_url: str) -> str:
        """Register the model, mint a consumer key (no limits), prove one call works."""
        self.register(admin_key, MODEL, mock_url)
        _key_id, key = self.mint_key(admin_key, "bench")
        status, answer = self.post("/v1/generate", key, {"model": MODEL, "input": "hello"})
        if status != 200 or not answer.get("output"):
            raise RuntimeError(f"smoke call: {status} {answer!r}")
        return key

    def register(self, admin_key: str, name: str, endpoint: str, **fields: Any) -> None:
        """A text model at ``endpoint``; ``fields`` override the defaults (limits, ...)."""
        status, answer = self.post("/v1/models", admin_key, {
            "name": name, "type": "text", "endpoint": endpoint,
            "pricing": {"input_per_1k_tokens": 0.001, "output_per_1k_tokens": 0.002},
            **fields})
        if status != 201:
            raise RuntimeError(f"registering the model {name!r}: {status} {answer!r}")

    def mint_key(self, admin_key: str, name: str) -> tuple[str, str]:
        """A consumer key without limits: (its id, as usage_events.key_id holds it; the secret)."""
        status, answer = self.post("/v1/keys", admin_key, {"role": "consumer", "name": name})
        if status != 201:
            raise RuntimeError(f"creating a consumer key: {status} {answer!r}")
        return str(answer["id"]), str(answer["key"])


def environment(admin_key: str, extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without AI1NET_* and OTEL_* settings, plus the bench's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI1NET_", "OTEL_"))}
    env.update(AI1NET_ADMIN_KEY=admin_key, AI1NET_ALLOW_PRIVATE_ENDPOINTS="1",
               AI1NET_SECRET_KEY="bench")
    env.update(extra)
    return env


def start(*, admin_key: str, log_dir: Path, name: str, extra_env: dict[str, str],
          core: int | None = SUT_CORE, args: tuple[str, ...] = ()) -> Gateway:
    """AI1NET (pinned to the system-under-test core unless ``core`` is None); start-up is
    spawn → /readyz 200."""
    data_dir = Path(tempfile.mkdtemp(prefix="ai1net-bench-"))
    grpc_port, http_port = free_port(), free_port()
    command = [sys.executable, "-m", "ai1net.server.cli", "serve",
               "--grpc-addr", f"127.0.0.1:{grpc_port}", "--http-addr", f"127.0.0.1:{http_port}",
               "--database-url", f"sqlite:///{data_dir}/bench.db", *args]
    service = spawn(name, command, core=core, log_dir=log_dir,
                    env=environment(admin_key, extra_env))
    http_url = f"http://127.0.0.1:{http_port}"
    try:
        startup = wait_http(service, f"{http_url}/readyz")
    except BaseException:
        service.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return Gateway(service, http_url, f"127.0.0.1:{grpc_port}", startup, data_dir)
