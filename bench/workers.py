"""``python -m bench.workers`` (``make bench-workers``): AI1NET with 1 worker and with 2.

Nothing is pinned: the workers, the mock provider and the load generator share both cores,
as they would on a small host. Both set-ups get the same HTTP load in interleaved rounds
(the median kept). With Redis (``AI1NET_TEST_REDIS_URL`` or redis://127.0.0.1:6379/0 when it
answers), the workers share limits and learn of the model registered after start through
its change feed; without it, ``--workers 2`` is measured anyway and warns.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import sys
from contextlib import ExitStack

from bench import gateway
from bench.passes import ROOT, Bench, Options, Progress, Target
from bench.procs import free_port, spawn, wait_tcp

LOG_DIR = ROOT / "bench" / "results" / "logs"


def redis_url() -> str | None:
    url = os.environ.get("AI1NET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return url
    except OSError:
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    options = Options(duration_s=args.duration, warmup_s=2.0, concurrency=args.concurrency)
    bench = Bench(options, Progress(total=2 + 2 * args.rounds))
    redis = redis_url()
    env = {"AI1NET_REDIS_URL": redis} if redis else {}
    with ExitStack() as stack:
        port = free_port()
        mock = spawn("workers-mock", [sys.executable, "-m", "bench.mock_provider", "--port",
                                      str(port)], core=None, log_dir=LOG_DIR)
        stack.callback(mock.stop)
        wait_tcp(mock, port)
        mock_url = f"http://127.0.0.1:{port}/v1/generate"
        targets: dict[str, Target] = {}
        for workers in (1, 2):
            bench.progress.start(f"AI1NET --workers {workers} start-up", 0)
            admin_key = secrets.token_urlsafe(24)
            started = gateway.start(admin_key=admin_key, log_dir=LOG_DIR,
                                    name=f"ai1net-workers{workers}", extra_env=env, core=None,
                                    args=("--workers", str(workers)))
            stack.callback(started.stop)
            key = started.prepare(admin_key, mock_url)
            bench.progress.done(f"ready in {started.startup_s:.2f} s")
            targets[str(workers)] = Target("http", f"{started.http_url}/v1/generate", key=key,
                                           client_core=None)
        rates: dict[str, list[float]] = {name: [] for name in targets}
        for number in range(1, args.rounds + 1):
            for name, target in targets.items():
                result = bench.throughput(f"--workers {name} round {number}", target)
                if "summary" in result and not result["summary"]["errors"]:
                    rates[name].append(result["summary"]["rps"])
    one, two = (statistics.median(rates[n]) if rates[n] else None for n in ("1", "2"))
    print(f"\n--workers 1: {one or 0:,.0f} req/s, --workers 2: {two or 0:,.0f} req/s "
          f"(medians of {args.rounds} rounds; every pass: 1 → {[round(r) for r in rates['1']]}, "
          f"2 → {[round(r) for r in rates['2']]})")
    if one and two:
        print(f"scaling from 1 to 2 workers: {two / one:.2f}x on {os.cpu_count()} cores shared "
              f"with the mock and the load generator; Redis: {'yes' if redis else 'no'}")


if __name__ == "__main__":
    main()
