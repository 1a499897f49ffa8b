"""Summaries of per-request times, and CPU accounting read from /proc."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class Summary:
    """One measured window: counts, rate and latency percentiles in milliseconds."""

    requests: int
    errors: int
    elapsed_s: float
    rps: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(latencies_s: list[float], *, errors: int, elapsed_s: float) -> Summary:
    """Percentiles from every request's own time (linear interpolation between ranks)."""
    count = len(latencies_s)
    if count < 2:
        only = latencies_s[0] * 1000 if latencies_s else float("nan")
        return Summary(count, errors, elapsed_s, count / elapsed_s if elapsed_s else 0.0,
                       only, only, only, only, only, only)
    cuts = statistics.quantiles(latencies_s, n=1000, method="inclusive")
    return Summary(
        requests=count, errors=errors, elapsed_s=elapsed_s,
        rps=count / elapsed_s,
        mean_ms=statistics.fmean(latencies_s) * 1000,
        p50_ms=cuts[499] * 1000, p90_ms=cuts[899] * 1000,
        p99_ms=cuts[989] * 1000, p999_ms=cuts[998] * 1000,
        max_ms=max(latencies_s) * 1000,
    )


def core_ticks() -> dict[str, tuple[int, int, int]]:
    """(busy, stolen, total) jiffies per CPU from /proc/stat; empty where /proc is missing.

    Stolen time (the hypervisor running someone else) is kept apart from busy time: a VM's
    core that is stolen from runs the system under test slower without looking busy.
    """
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return {}
    ticks: dict[str, tuple[int, int, int]] = {}
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        ticks[name] = (user + nice + system + irq + softirq, steal,
                       user + nice + system + idle + iowait + irq + softirq + steal)
    return ticks


def core_busy(before: dict[str, tuple[int, int, int]],
              after: dict[str, tuple[int, int, int]], *, stolen: bool = False) -> dict[str, float]:
    """Per-core busy (or, with ``stolen``, stolen) percentage between two readings."""
    shares: dict[str, float] = {}
    for name, (busy_after, steal_after, total_after) in after.items():
        busy_before, steal_before, total_before = before.get(name, (0, 0, 0))
        span = total_after - total_before
        part = (steal_after - steal_before) if stolen else (busy_after - busy_before)
        shares[name] = round(100 * part / span, 1) if span else 0.0
    return shares


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of one process (all its threads), or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuWindow:
    """Busy share of each core and CPU share of named processes over one window."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._ticks = core_ticks()
        self._cpu = {name: process_cpu_s(pid) for name, pid in pids.items()}
        self._began = time.perf_counter()

    def close(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self._began
        shares: dict[str, float] = {}
        for name, pid in self._pids.items():
            before, after = self._cpu[name], process_cpu_s(pid)
            if before is not None and after is not None:
                shares[name] = round(100 * (after - before) / elapsed, 1)
        ticks = core_ticks()
        return {"cores_busy_pct": core_busy(self._ticks, ticks), "cpu_pct": shares,
                "stolen_pct": core_busy(self._ticks, ticks, stolen=True)}
