"""One typed settings object, read from the environment and the command line."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
DEFAULT_DATABASE_URL = "sqlite:///./ai1net.db"


@dataclass(frozen=True, slots=True)
class Settings:
    grpc_addr: str = "127.0.0.1:50051"
    http_addr: str = "127.0.0.1:8080"
    database_url: str = DEFAULT_DATABASE_URL
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
    # Serving TLS on both listeners; with tls_client_ca, gRPC requires client certificates.
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    # Connecting to grpc_target (the bridge run apart) over TLS: the CA to verify it
    # against (default: the system's) and a client certificate when it asks for one.
    tls: bool = False
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = dataclasses.field(default=None, repr=False)
    # Where the workers of `serve --workers N` share their metrics (made and emptied by
    # the first process when unset).
    metrics_dir: str | None = None
    # How often each process looks for key and model changes in the database.
    change_poll_interval_s: float = 0.25
    usage_flush_interval_s: float = 0.1
    usage_batch_size: int = 500
    usage_buffer_limit: int = 100_000
    # Calls in flight on one process before more are shed (503 with Retry-After).
    max_in_flight: int = 20_000
    # Where usage events wait on local disk until written (each process has its own file;
    # a process starting replays the files of processes that are gone). Unset: beside a
    # SQLite file, else ./ai1net-spool.
    spool_dir: str | None = None
    # Days raw usage events are kept (0: forever); the hourly roll-ups stay regardless.
    usage_retention_days: int = 0
    # On SIGTERM, seconds of serving on after /readyz and gRPC health turn NOT_SERVING,
    # so load balancers stop sending calls before the listeners close.
    drain_delay_s: float = 0.0
    # Seconds between health probes of each model's health_url (jittered; 0: no probes),
    # and how many probes run at once.
    health_probe_s: float = 30.0
    health_probe_concurrency: int = 16

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

    def to_env(self) -> dict[str, str]:
        """The AI1NET_* variables that give another process these settings (the workers)."""
        env = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value != field.default and value is not None:
                text = ("1" if value else "0") if isinstance(value, bool) else str(value)
                env[f"AI1NET_{field.name.upper()}"] = text
        return env

    def validate(self) -> None:
        """Every setting checked at start-up; a bad one is a ValueError naming its variable."""
        for name in ("grpc_addr", "http_addr", "grpc_target"):
            value = getattr(self, name)
            if value is not None:
                _check_address(name, value)
        _check_database_url(self.database_url)
        if self.redis_url is not None:
            _check_redis_url(self.redis_url)
        for name, low in (("workers", 1), ("max_body_bytes", 1), ("usage_batch_size", 1),
                          ("usage_buffer_limit", 1), ("max_in_flight", 1), ("grace_period_s", 0),
                          ("drain_delay_s", 0), ("usage_retention_days", 0), ("health_probe_s", 0),
                          ("health_probe_concurrency", 1),
                          ("usage_flush_interval_s", 0), ("change_poll_interval_s", 0.01)):
            value = getattr(self, name)
            if not math.isfinite(value) or value < low:
                raise ValueError(f"{_variable(name)} must be at least {low}, got {value!r}")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(f"{_variable('log_level')} must be one of {', '.join(LOG_LEVELS)}, "
                             f"got {self.log_level!r}")
        for first, second in (("tls_cert", "tls_key"), ("client_cert", "client_key")):
            if bool(getattr(self, first)) != bool(getattr(self, second)):
                raise ValueError(f"{_variable(first)} and {_variable(second)} go together")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError(f"{_variable('tls_client_ca')} needs {_variable('tls_cert')}")


LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def _variable(name: str) -> str:
    """How a setting is named to people: its variable and, for most, its flag."""
    return f"AI1NET_{name.upper()} (--{name.replace('_', '-')})"


def _check_address(name: str, value: str) -> None:
    separator, port = value.rpartition(":")[1:]
    if not separator or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"{_variable(name)} must look like HOST:PORT with a port in 0-65535, "
                         f"got {value!r}")


def _check_database_url(value: str) -> None:
    if value == DEFAULT_DATABASE_URL:
        return  # well formed: a process that opens no database (--bridge-only) skips SQLAlchemy
    # Imported here: SQLAlchemy's URL parser is the rule, and only a URL given needs it.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
        url.port  # noqa: B018  # parses the port
    except (ArgumentError, ValueError) as exc:
        # Not repeated: it may hold a password.
        raise ValueError(f"{_variable('database_url')} is not a database URL") from exc
    if not url.drivername.startswith(("sqlite", "postgres")):
        raise ValueError(f"{_variable('database_url')} must be a sqlite:// or postgresql:// "
                         f"URL, got a {url.drivername} one")


def _check_redis_url(value: str) -> None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # parses the port
    except ValueError as exc:
        raise ValueError(f"{_variable('redis_url')} is not a Redis URL") from exc
    if parts.scheme not in ("redis", "rediss", "unix") or \
            (parts.scheme != "unix" and not parts.hostname) or \
            (parts.scheme == "unix" and not parts.path):
        raise ValueError(f"{_variable('redis_url')} must look like redis://HOST:PORT/DB, "
                         f"rediss://… or unix:///PATH")


def _parse(kind: object, raw: str, name: str) -> object:
    text = str(kind)
    if text.startswith("bool"):
        word = raw.strip().lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise ValueError(f"AI1NET_{name.upper()} must be one of "
                             f"{', '.join(sorted(TRUE_WORDS | FALSE_WORDS))}, got {raw!r}")
        return word in TRUE_WORDS
    try:
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"AI1NET_{name.upper()} must be a number, got {raw!r}") from exc
    return raw
