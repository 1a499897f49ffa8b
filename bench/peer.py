"""``python -m bench.peer`` (``make bench-peer``): LiteLLM's proxy against the same mock.

LiteLLM goes into its own virtual environment (``bench/.peer-venv``): ``litellm[proxy]`` pins
companion packages the registry may not carry, so litellm and the proxy's requirements are
installed by name. The proxy runs with one worker and no database, pinned to core 1, in front of
the mock's OpenAI-style endpoint; the same load generator measures it. The result goes to
``bench/results/peer.json``, which ``make bench`` shows as a row of its own (from that earlier
run, and said so). If LiteLLM cannot be installed or started, the file says why.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.passes import MOCK_CORE, ROOT, SUT_CORE, Bench, Options, Progress, Target
from bench.procs import Service, free_port, spawn, wait_http, wait_tcp
from bench.run import LOG_DIR, RESULTS, python_module

VENV = ROOT / "bench" / ".peer-venv"
# What `litellm --config` imports at start-up (litellm 1.110), asked for by name rather than
# through the `litellm[proxy]` extra, whose exact pins are not all on the registry. Anything a
# later litellm adds is found by `complete()`.
PACKAGES = ("litellm", "fastapi", "uvicorn", "uvloop", "gunicorn", "orjson", "backoff",
            "apscheduler", "pyyaml", "python-multipart", "email-validator", "cryptography",
            "PyJWT", "websockets", "redis", "semver", "expression", "fastapi-sso", "mcp",
            "soundfile")
# Import names whose distribution is called something else.
DISTRIBUTIONS = {"yaml": "pyyaml", "jwt": "PyJWT", "multipart": "python-multipart",
                 "nacl": "pynacl", "fastapi_sso": "fastapi-sso"}
INSTALL_TIMEOUT_S = 300
CHAT = '{"model": "bench", "messages": [{"role": "user", "content": "hello"}]}'
CHAT_STREAM = CHAT[:-1] + ', "stream": true}'


class PeerUnavailable(RuntimeError):
    """LiteLLM could not be installed or started here."""


def venv_python() -> Path:
    return VENV / "bin" / "python"


def install() -> str:
    """Create the peer venv if needed and return litellm's version."""
    if not venv_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    # Keeps the venv out of git and out of `ruff check .` (as Python 3.13's venv does itself).
    (VENV / ".gitignore").write_text("*\n")
    command = [str(venv_python()), "-m", "pip", "install", "--quiet", *PACKAGES]
    try:
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PeerUnavailable(f"pip install took over {INSTALL_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        raise PeerUnavailable(f"pip install failed:\n{done.stderr[-3000:]}")
    complete()
    version = subprocess.run(
        [str(venv_python()), "-c", "from importlib.metadata import version as v;"
         "print(v('litellm'))"], capture_output=True, text=True, check=False)
    return version.stdout.strip() or "?"


def complete(rounds: int = 15) -> None:
    """Install whatever the proxy module still fails to import, one module at a time."""
    for _ in range(rounds):
        check = subprocess.run([str(venv_python()), "-c", "import litellm.proxy.proxy_server"],
                               capture_output=True, text=True, env=peer_env(), check=False)
        missing = re.search(r"No module named '([^'.]+)", check.stderr)
        if check.returncode == 0:
            return
        if missing is None:
            raise PeerUnavailable(f"litellm's proxy does not import:\n{check.stderr[-2000:]}")
        name = DISTRIBUTIONS.get(missing.group(1), missing.group(1))
        print(f"  litellm's proxy also needs {name}", file=sys.stderr, flush=True)
        subprocess.run([str(venv_python()), "-m", "pip", "install", "--quiet", name],
                       capture_output=True, timeout=INSTALL_TIMEOUT_S, check=False)
    raise PeerUnavailable(f"litellm's proxy still misses modules after {rounds} installs")


def config(mock_port: int, master_key: str) -> str:
    return f"""\
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: http://127.0.0.1:{mock_port}/v1
      api_key: sk-mock
litellm_settings:
  telemetry: false
  drop_params: true
general_settings:
  master_key: {master_key}
"""


def peer_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DATABASE_URL"))}
    # No downloads at start-up (the model price map ships with the package), no telemetry.
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False",
               LITELLM_LOG="ERROR", DISABLE_SCHEMA_UPDATE="true")
    return env


def start_litellm(config_path: Path, log_dir: Path) -> tuple[Service, str, float]:
    port = free_port()
    command = [str(VENV / "bin" / "litellm"), "--config", str(config_path), "--host",
               "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    service = spawn("litellm", command, core=SUT_CORE, log_dir=log_dir, env=peer_env())
    url = f"http://127.0.0.1:{port}"
    try:
        startup = wait_http(service, f"{url}/health/liveliness", timeout=90, interval=0.02)
    except (RuntimeError, TimeoutError) as exc:
        service.stop()
        raise PeerUnavailable(f"litellm did not start: {exc}") from exc
    return service, url, startup


def measure(options: Options, version: str) -> dict[str, Any]:
    master_key = "sk-" + secrets.token_hex(12)
    mock_port = free_port()
    mock = spawn("peer-mock", python_module("bench.mock_provider", "--port", str(mock_port)),
                 core=MOCK_CORE, log_dir=LOG_DIR)
    config_path = RESULTS / "litellm.yaml"
    config_path.write_text(config(mock_port, master_key))
    bench = Bench(options, Progress(total=7))
    try:
        wait_tcp(mock, mock_port)
        chat = f"http://127.0.0.1:{mock_port}/v1/chat/completions"
        direct = bench.both("direct chat", Target("http", chat, CHAT, client_core=SUT_CORE,
                                                  watch={"mock": mock}))
        direct_stream = bench.single("direct chat stream", Target(
            "http-stream", chat, CHAT_STREAM, client_core=SUT_CORE, watch={"mock": mock}))
        bench.progress.start("LiteLLM start-up", 0)
        litellm, url, startup = start_litellm(config_path, LOG_DIR)
        bench.progress.done(f"ready in {startup:.2f} s")
        try:
            watch = {"mock": mock, "sut": litellm}
            target = f"{url}/v1/chat/completions"
            unary = bench.both("litellm", Target("http", target, CHAT, key=master_key,
                                                 watch=watch))
            stream = bench.single("litellm stream", Target(
                "http-stream", target, CHAT_STREAM, key=master_key, watch=watch))
            rss = litellm.peak_rss_mib()
        finally:
            litellm.stop()
    finally:
        mock.stop()
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"), "version": version,
        "startup_s": startup,
        "scenarios": {
            "litellm": {**unary, "rss_mib": rss, "startup_s": startup, "baseline": direct},
            "litellm-stream": {**stream, "rss_mib": rss, "baseline": direct_stream},
        },
    }


def summary(peer: dict[str, Any]) -> str:
    unary = peer["scenarios"]["litellm"]
    thr, lat = unary["throughput"]["summary"], unary["latency"]["summary"]
    base = unary["baseline"]["latency"]["summary"]
    stream = peer["scenarios"]["litellm-stream"]
    ttfc = stream["latency"].get("ttfc", {}).get("p50_ms", float("nan"))
    base_ttfc = stream["baseline"]["latency"].get("ttfc", {}).get("p50_ms", float("nan"))
    return (f"LiteLLM {peer['version']} (one worker, no database, pinned to core 1):\n"
            f"  {thr['rps']:,.0f} req/s at c={unary['throughput']['concurrency']} "
            f"(p50 {thr['p50_ms']:.2f} ms, p99 {thr['p99_ms']:.2f} ms, {thr['errors']} errors)\n"
            f"  c=1: p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms; added over direct "
            f"p50 {lat['p50_ms'] - base['p50_ms']:.2f} ms, p99 "
            f"{lat['p99_ms'] - base['p99_ms']:.2f} ms\n"
            f"  stream: TTFC p50 {ttfc:.2f} ms (added {ttfc - base_ttfc:.2f} ms)\n"
            f"  peak RSS {unary['rss_mib']} MiB; start-up to live {peer['startup_s']:.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--latency-duration", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    options = Options(duration_s=args.duration, latency_duration_s=args.latency_duration,
                      concurrency=args.concurrency)
    RESULTS.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    try:
        print(f"installing litellm into {VENV} (up to {INSTALL_TIMEOUT_S} s)...",
              file=sys.stderr, flush=True)
        version = install()
        peer = measure(options, version)
    except PeerUnavailable as exc:
        (RESULTS / "peer.json").write_bytes(orjson.dumps({"error": str(exc)}))
        print(f"LiteLLM peer unavailable here: {exc}", file=sys.stderr)
        return 1
    (RESULTS / "peer.json").write_bytes(orjson.dumps(peer, option=orjson.OPT_INDENT_2))
    print(summary(peer))
    print(f"\nwall time {time.perf_counter() - began:.0f} s; wrote {RESULTS / 'peer.json'}; "
          "`make bench` shows it beside AI1NET")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
