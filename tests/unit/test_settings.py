"""Every setting is checked at start-up; a malformed one names its variable (CONTRACT §5)."""

from __future__ import annotations

import pytest

from ai1net.server.benchswitches import BenchSwitches
from ai1net.server.settings import Settings

BAD = {
    "AI1NET_ALLOW_PRIVATE_ENDPOINTS": "ture",
    "AI1NET_HTTP_ADDR": "127.0.0.1:99999",
    "AI1NET_GRPC_ADDR": "127.0.0.1:¹",
    "AI1NET_GRPC_TARGET": "no-port",
    "AI1NET_REDIS_URL": "redis//127.0.0.1:6379",
    "AI1NET_DATABASE_URL": "postgresql://user:pw@host:port/db",
    "AI1NET_WORKERS": "0",
    "AI1NET_GRACE_PERIOD_S": "nan",
    "AI1NET_MAX_BODY_BYTES": "1e6",
    "AI1NET_LOG_LEVEL": "LOUD",
    "AI1NET_TLS_CERT": "cert.pem",
    "AI1NET_TLS_CLIENT_CA": "ca.pem",
    "AI1NET_CLIENT_KEY": "key.pem",
    "AI1NET_USAGE_RETENTION_DAYS": "-1",
    "AI1NET_HEALTH_PROBE_S": "-1",
    "AI1NET_HEALTH_PROBE_CONCURRENCY": "0",
}


@pytest.mark.parametrize(("variable", "value"), BAD.items(), ids=BAD.keys())
def test_a_malformed_setting_names_its_variable(variable: str, value: str):
    with pytest.raises(ValueError, match=variable) as failure:
        Settings.from_env({variable: value})
    assert "pw@" not in str(failure.value)  # a URL's password is never repeated


def test_a_malformed_flag_names_its_variable_and_flag():
    with pytest.raises(ValueError, match=r"AI1NET_HTTP_ADDR \(--http-addr\)"):
        Settings.from_env({}, http_addr="localhost:70000")


GOOD = {
    "AI1NET_ALLOW_PRIVATE_ENDPOINTS": ("off", "allow_private_endpoints", False),
    "AI1NET_HTTP_ADDR": ("0.0.0.0:0", "http_addr", "0.0.0.0:0"),
    "AI1NET_GRPC_ADDR": ("[::1]:50051", "grpc_addr", "[::1]:50051"),
    "AI1NET_REDIS_URL": ("rediss://user:pw@cache:6380/1", "redis_url",
                         "rediss://user:pw@cache:6380/1"),
    "AI1NET_DATABASE_URL": ("postgresql://u@db:5432/x", "database_url", "postgresql://u@db:5432/x"),
    "AI1NET_LOG_LEVEL": ("debug", "log_level", "debug"),
    "AI1NET_USAGE_RETENTION_DAYS": ("90", "usage_retention_days", 90),
    "AI1NET_HEALTH_PROBE_S": ("0", "health_probe_s", 0.0),
    "AI1NET_HEALTH_PROBE_CONCURRENCY": ("4", "health_probe_concurrency", 4),
}


@pytest.mark.parametrize(("variable", "case"), GOOD.items(), ids=GOOD.keys())
def test_a_well_formed_setting_is_taken(variable: str, case: tuple[str, str, object]):
    raw, field, expected = case
    assert getattr(Settings.from_env({variable: raw}), field) == expected


def test_workers_get_the_same_settings():
    settings = Settings.from_env({"AI1NET_REDIS_URL": "redis://r:6379/0"}, workers=2,
                                 tls_cert="c.pem", tls_key="k.pem",
                                 allow_private_endpoints=True)
    assert Settings.from_env(settings.to_env()) == settings


def test_benchmark_switches_are_not_settings():
    assert {"accounting", "tracing"}.isdisjoint(Settings.__dataclass_fields__)
    assert BenchSwitches.from_env({}) == BenchSwitches(accounting=True, tracing=True)
    assert BenchSwitches.from_env({"AI1NET_ACCOUNTING": "0", "AI1NET_TRACING": "Off"}) == \
        BenchSwitches(accounting=False, tracing=False)
    with pytest.raises(ValueError, match="AI1NET_TRACING"):
        BenchSwitches.from_env({"AI1NET_TRACING": "maybe"})
