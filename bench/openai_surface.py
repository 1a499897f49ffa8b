"""The OpenAI-compatible surface beside the native one (issue 14, item 4).

``/openai/v1/chat/completions`` is a translation in the bridge onto the same GenerateService
call as ``/v1/generate``, so its cost is the translation's: it should serve within 10% of
the native HTTP throughput, and its stream's first chunk within 0.5 ms of the native
stream's. Besides the standalone passes of the table, it is measured *paired*, as
``bench/costs.py`` measures features: a twin AI1NET is started on the same core, and in each
of ``--pair-rounds`` rounds one process is loaded through ``/v1/generate`` and the other
through the OpenAI surface at the same time (swapping roles each round); the ratio of their
CPU per call is the share of the native throughput the OpenAI surface would serve on a core
of its own. Whatever slows the machine slows both alike.
"""

from __future__ import annotations

import secrets
import statistics
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import gateway
from bench.passes import Bench, Target, cpu_per_call
from bench.procs import Service

PATH = "/openai/v1/chat/completions"
MESSAGES = '"messages": [{"role": "user", "content": "hello"}]'
PAIRED = ("ai1net-http", "ai1net-http-stream", "ai1net-openai", "ai1net-openai-stream")
NATIVE_STREAM = f'{{"model": "{gateway.MODEL}", "input": "hello", "stream": true}}'


def targets(http_url: str, model: str, native: Target) -> dict[str, Target]:
    """The unary and streaming targets, with the native HTTP target's key and watch list."""
    url = f"{http_url}{PATH}"
    unary = f'{{"model": "{model}", {MESSAGES}}}'
    stream = f'{{"model": "{model}", {MESSAGES}, "stream": true}}'
    return {"ai1net-openai": replace(native, url=url, body=unary),
            "ai1net-openai-stream": replace(native, kind="http-stream", url=url, body=stream)}


def measure(bench: Bench, first: dict[str, Target], mock: Service, mock_url: str,
            log_dir: Path) -> dict[str, Any]:
    """Paired rounds against a twin AI1NET; ``first`` holds the main AI1NET's ``PAIRED``
    targets. The twin is stopped before this returns."""
    rounds: list[dict[str, float | None]] = []
    with ExitStack() as stack:
        bench.progress.start("AI1NET start-up (twin for the OpenAI surface)", 0)
        admin_key = secrets.token_urlsafe(24)
        twin = gateway.start(admin_key=admin_key, log_dir=log_dir, name="ai1net-openai-twin",
                             extra_env=bench.options.ai1net_env)
        stack.callback(twin.stop)
        native = Target("http", f"{twin.http_url}/v1/generate", key=twin.prepare(
            admin_key, mock_url), watch={"mock": mock, "sut": twin.service})
        second = {"ai1net-http": native,
                  "ai1net-http-stream": replace(native, kind="http-stream", body=NATIVE_STREAM),
                  **targets(twin.http_url, gateway.MODEL, native)}
        bench.progress.done(f"ready in {twin.startup_s:.2f} s")
        for number in range(1, bench.options.pair_rounds + 1):
            # The two processes swap roles each round, so neither one's state decides.
            one, other = (first, second) if number % 2 else (second, first)
            results = bench.together(f"paired OpenAI surface round {number}", {
                "native": one["ai1net-http"], "openai": other["ai1net-openai"]})
            streams = bench.together(f"paired OpenAI stream c=1 round {number}", {
                "native": one["ai1net-http-stream"], "openai": other["ai1net-openai-stream"]},
                concurrency=1)
            rounds.append({**_round(results), "ttfc_gap_ms": _ttfc_gap(streams)})
    return {"cpu_ratio": _median(rounds, "cpu_ratio"),
            "ttfc_gap_ms": _median(rounds, "ttfc_gap_ms"), "rounds": rounds,
            "definition": "cpu_ratio: CPU per call of /v1/generate / CPU per call of "
                          "/openai/v1/chat/completions; ttfc_gap_ms: time to first chunk p50 "
                          "of the OpenAI stream minus the native stream's at concurrency 1; "
                          "two AI1NET processes loaded at once on one core, median of the "
                          "rounds"}


def _round(results: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    rps = {name: r.get("summary", {}).get("rps") for name, r in results.items()}
    cpu = {name: cpu_per_call(r) if "summary" in r else 0.0 for name, r in results.items()}
    return {"native_rps": rps["native"], "openai_rps": rps["openai"],
            "native_cpu_us": cpu["native"], "openai_cpu_us": cpu["openai"],
            "cpu_ratio": cpu["native"] / cpu["openai"] if cpu["native"] and cpu["openai"]
            else None}


def _ttfc_gap(results: dict[str, dict[str, Any]]) -> float | None:
    first = {name: (r.get("ttfc") or {}).get("p50_ms") for name, r in results.items()}
    if first["native"] is None or first["openai"] is None:
        return None
    return float(first["openai"] - first["native"])


def _median(rounds: list[dict[str, float | None]], key: str) -> float | None:
    known = [value for r in rounds if (value := r[key]) is not None]
    return statistics.median(known) if known else None


def steps(pair_rounds: int) -> int:
    """Progress steps: the twin's start-up, then two paired passes a round."""
    return 1 + 2 * pair_rounds


def describe(result: dict[str, Any]) -> list[str]:
    def share(value: float | None) -> str:
        return "—" if value is None else f"{value:.1%}"
    rounds = result.get("rounds", [])
    cpu = "; ".join(f"{r['openai_cpu_us']:.0f} vs {r['native_cpu_us']:.0f} µs" for r in rounds)
    gaps = ", ".join("—" if r["ttfc_gap_ms"] is None else f"{r['ttfc_gap_ms']:+.2f}"
                     for r in rounds)
    gap = result.get("ttfc_gap_ms")
    return [f"paired OpenAI surface: /openai/v1/chat/completions would serve "
            f"{share(result.get('cpu_ratio'))} of /v1/generate's req/s (CPU per call, "
            f"OpenAI vs native, two AI1NET processes loaded at once: {cpu}); its stream's "
            f"first chunk comes {'—' if gap is None else f'{gap:+.2f}'} ms after the native "
            f"stream's at c=1 (p50, side by side; per round {gaps} ms)"]
