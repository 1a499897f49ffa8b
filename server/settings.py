"""One typed settings object, read from the environment and the command line."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, slots=True)
class Settings:
    grpc_addr: str = "127.0.0.1:50051"
    http_addr: str = "127.0.0.1:8080"
    database_url: str = "sqlite:///./ai1net.db"
    redis_url: str | None = None
    admin_key: str | None = dataclasses.field(default=None, repr=False)
    secret_key: str | None = dataclasses.field(default=None, repr=False)
    secret_key_file: str | None = None
    allow_private_endpoints: bool = False
    workers: int = 1
    grace_period_s: float = 10.0
    max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"
    # Where the bridge finds the gRPC server when they run apart.
    grpc_target: str | None = None
    # How often each process looks for key and model changes in the database.
    change_poll_interval_s: float = 0.25
    usage_flush_interval_s: float = 0.1
    usage_batch_size: int = 500
    usage_buffer_limit: int = 100_000
    # Calls in flight on one process before more are shed (503 with Retry-After).
    max_in_flight: int = 20_000
    # Benchmark switches: measure what accounting and tracing cost. Leave them on.
    accounting: bool = True
    tracing: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from AI1NET_* variables; keyword overrides (the CLI flags) win."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(f"AI1NET_{field.name.upper()}")
            if raw is not None and raw != "":
                values[field.name] = _parse(field.type, raw, field.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        # _parse converted each value to its field's type; mypy cannot follow that.
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        for name in ("grpc_addr", "http_addr"):
            _host, _, port = getattr(self, name).rpartition(":")
            if not port.isdigit():
                raise ValueError(f"{name} must look like HOST:PORT, got {getattr(self, name)!r}")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight (AI1NET_MAX_IN_FLIGHT) must be at least 1")
        if not self.database_url.startswith(("sqlite", "postgres")):
            raise ValueError("database_url must be a sqlite:// or postgresql:// URL")


def _parse(kind: object, raw: str, name: str) -> object:
    text = str(kind)
    if text.startswith("bool"):
        return raw.strip().lower() in TRUE_WORDS
    try:
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"AI1NET_{name.upper()} must be a number, got {raw!r}") from exc
    return raw
