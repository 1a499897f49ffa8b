"""The conformance check (CONTRACT §3.1) against real endpoints: the demo provider, a
scripted one that gets each rule wrong in turn, an OpenAI-compatible one, a hostile one."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from ai1net.server.conformance import Checker, Report, Target
from ai1net.server.transport import HttpTransport
from tests.conftest import ROOT, Harness, bearer, start_process, stop_process


@pytest.fixture
async def checker() -> AsyncIterator[Checker]:
    transport = HttpTransport(allow_private=True)
    yield Checker(transport=transport, calls=3)
    await transport.close()


@pytest.fixture(scope="module")
def hostile_url() -> Iterator[str]:
    process, line = start_process("-m", "tests.support.hostile", "--port", "0")
    yield f"http://127.0.0.1:{line.split()[1]}"
    stop_process(process)


def results(report: Report) -> dict[str, str]:
    return {c.name: c.result for c in report.checks}


async def test_the_demo_provider_passes(checker: Checker, demo_provider_url: str):
    report = await checker.run(Target(f"{demo_provider_url}/v1/generate"))
    assert report.passed, report.text()
    assert set(results(report).values()) == {"pass"}


async def test_fractional_usage_and_a_stream_answered_whole_are_warnings(checker: Checker,
                                                                         provider_url: str):
    report = await checker.run(Target(f"{provider_url}/fractional"))
    assert report.passed, report.text()
    assert results(report)["usage"] == "warn"
    assert results(report)["streaming"] == "warn"


@pytest.mark.parametrize(("path", "target", "check", "detail"), [
    ("/stream/cut?n=2", {}, "streaming", "closed the connection before"),
    ("/badjson", {}, "answer", "not JSON"),
    ("/image", {}, "answer", "must be a string"),
    ("/ok", {"type": "image"}, "answer", "image_url"),
    ("/status/500", {}, "answer", "HTTP 500"),
    ("/ok", {"auth": {"Authorization": "Bearer sk-any"}}, "auth", "without the key was answered"),
])
async def test_each_broken_rule_fails_by_name(checker: Checker, provider_url: str, path: str,
                                              target: dict, check: str, detail: str):
    report = await checker.run(Target(f"{provider_url}{path}", **target))
    assert not report.passed
    failed = {c.name: c.detail for c in report.checks if c.result == "fail"}
    assert check in failed and detail in failed[check], report.text()


async def test_a_provider_that_demands_its_key(checker: Checker, provider_url: str):
    report = await checker.run(Target(f"{provider_url}/auth/sk-real",
                                      auth={"x-api-key": "sk-real"}))
    assert results(report)["auth"] == "pass", report.text()
    assert results(report)["answer"] == "pass"


async def test_an_openai_compatible_upstream(checker: Checker, provider_url: str):
    report = await checker.run(Target(f"{provider_url}/openai/ok/v1", api="openai",
                                      upstream_model="m"))
    assert report.passed, report.text()
    assert results(report)["streaming"] == "pass"
    cut = await checker.run(Target(f"{provider_url}/openai/cut/v1", api="openai",
                                   upstream_model="m"))
    assert results(cut)["streaming"] == "fail"


@pytest.mark.parametrize("path", ["/gzip-bomb", "/endless-chunked", "/header-flood"])
async def test_a_hostile_endpoint_is_survived(checker: Checker, hostile_url: str, path: str):
    report = await checker.run(Target(hostile_url + path))
    assert not report.passed
    assert "answer" in [c.name for c in report.checks if c.result == "fail"]


def test_the_command_reports_and_exits_by_the_result(demo_provider_url: str,
                                                     provider_url: str):
    env = {"AI1NET_ALLOW_PRIVATE_ENDPOINTS": "1", "PATH": "/usr/bin:/bin"}

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ai1net.server.cli", "provider-check",
                               *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60, check=False)

    good = check(f"{demo_provider_url}/v1/generate", "--calls", "2")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "PASS  answer" in good.stdout and "PASSED:" in good.stdout
    bad = check(f"{provider_url}/stream/cut", "--json", "--calls", "1")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    report = json.loads(bad.stdout)
    assert report["passed"] is False
    assert {"name", "result", "detail"} <= set(report["checks"][0])
    assert set(report["latency_ms"]) == {"p50", "p95"}
    assert check("--type", "video", "http://x").returncode == 2
    guarded = subprocess.run([sys.executable, "-m", "ai1net.server.cli", "provider-check",
                              f"{demo_provider_url}/v1/generate", "--calls", "1"], cwd=ROOT,
                             env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                             timeout=60, check=False)
    assert guarded.returncode == 1 and "not a public address" in guarded.stdout


async def test_a_model_is_checked_on_request_and_keeps_its_verification(harness: Harness,
                                                                        demo_provider_url: str):
    provider = await harness.key("provider")
    await harness.register(provider, name="checked", type="text",
                           endpoint=f"{demo_provider_url}/v1/generate")
    async with harness.http.post(f"{harness.http_url}/v1/models/checked/check",
                                 headers=bearer(provider)) as resp:
        report = await resp.json()
    assert resp.status == 200, report
    assert report["passed"] is True
    assert {c["name"] for c in report["checks"]} >= {"answer", "usage", "streaming", "errors"}
    async with harness.http.get(f"{harness.http_url}/v1/models/checked",
                                headers=bearer(provider)) as resp:
        verification = (await resp.json())["verification"]
    assert verification["passed"] is True
    assert verification["summary"] == report["summary"]


async def test_registration_with_verify_refuses_a_failing_endpoint(harness: Harness,
                                                                   provider_url: str,
                                                                   demo_provider_url: str):
    provider = await harness.key("provider")
    async with harness.http.post(f"{harness.http_url}/v1/models", headers=bearer(provider),
                                 json={"name": "unverified", "type": "text", "verify": True,
                                       "endpoint": f"{provider_url}/stream/cut"}) as resp:
        body = await resp.json()
    assert resp.status == 400, body
    assert body["error"]["type"] == "invalid_request"
    assert "conformance check failed" in body["error"]["message"]
    assert "streaming" in body["error"]["message"]
    async with harness.http.get(f"{harness.http_url}/v1/models/unverified",
                                headers=bearer(provider)) as resp:
        assert resp.status == 404  # nothing was registered
    model = await harness.register(provider, name="verified", type="text", verify=True,
                                   endpoint=f"{demo_provider_url}/v1/generate")
    assert model["verification"]["passed"] is True


async def test_an_endpoint_that_does_not_answer_is_one_failure_not_a_long_wait(
        checker: Checker):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = await checker.run(Target(f"http://127.0.0.1:{port}/v1/generate"))
    assert [(c.name, c.result) for c in report.checks] == [("answer", "fail")]
    assert "could not be reached" in report.checks[0].detail
