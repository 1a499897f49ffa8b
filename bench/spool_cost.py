"""``python -m bench.spool_cost``: what the spool adds to recording one usage event.

``Ledger.record`` with and without a spool file (a tmpfs or disk directory, ``--dir``),
interleaved in rounds of 10,000 events on a Ledger whose buffer is emptied between rounds
(no database write is measured: only what the call's own path pays). Prints the median
microseconds per event of each and their difference.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from ai1net.server.spool import Spool
from ai1net.server.usage import Ledger, UsageEvent, now_ms

EVENTS = 10_000


def event(n: int) -> UsageEvent:
    return UsageEvent(id=f"gen_{n:032x}", ts_ms=now_ms(), key_id="key_0123456789abcdef",
                      model="demo-text", model_owner="key_fedcba9876543210", input_tokens=8,
                      output_tokens=120, estimated=False, cost_nanos=496_000, latency_ms=3,
                      ttft_ms=3, outcome="ok")


def per_event_us(ledger: Ledger, events: list[UsageEvent]) -> float:
    started = time.perf_counter()
    for item in events:
        ledger.record(item)
    elapsed = time.perf_counter() - started
    ledger._pending.clear()
    ledger._calls.clear()
    return elapsed / len(events) * 1e6


async def main(directory: Path, rounds: int) -> None:
    plain = Ledger(db=None, limit=EVENTS * 2)  # type: ignore[arg-type]  # never flushed
    spooled = Ledger(db=None, limit=EVENTS * 2)  # type: ignore[arg-type]
    spool = spooled._spool = Spool(directory)
    events = [event(n) for n in range(EVENTS)]
    without, with_spool = [], []
    for _ in range(rounds):
        without.append(per_event_us(plain, events))
        with_spool.append(per_event_us(spooled, events))
        spool.truncate()
    spool.close(remove=True)
    a, b = statistics.median(without), statistics.median(with_spool)
    print(f"Ledger.record: {a:.2f} µs an event without a spool, {b:.2f} µs with one "
          f"(+{b - a:.2f} µs; median of {rounds} rounds of {EVENTS:,} events, in {directory})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="spool directory (default: a "
                        "new temporary directory)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        asyncio.run(main(Path(tmp), args.rounds))
