"""The bench's memory probe (bench/procs.py), which bench.hostile's bounds rest on."""

from __future__ import annotations

import os
from pathlib import Path

from bench.procs import PeakRss, status_kib

MiB = 1 << 20


def test_a_spike_between_two_samples_still_counts():
    """No sample lands inside the block (the interval is an hour): the peak is VmHWM's,
    reset when the block began."""
    pid = os.getpid()
    before = status_kib(pid, "VmRSS")
    assert before is not None
    with PeakRss(pid, interval=3600) as peak:
        spike = b"\x01" * (64 * MiB)
        del spike
    assert peak.peak_kib - before >= 60 * 1024, (before, peak.peak_kib)
    assert (status_kib(pid, "VmRSS") or 0) < peak.peak_kib


def test_sidebyside_serves_each_side_from_its_own_source(tmp_path: Path) -> None:
    from bench.sidebyside import packages  # imported here: it loads the whole bench

    root = Path(__file__).resolve().parents[2]
    linked = packages(root, tmp_path / "A")
    assert (linked / "ai1net" / "server").resolve() == root / "server"
    assert (linked / "ai1net" / "v1").resolve() == root / "clients/python/ai1net/v1"
    assert (linked / "ai1net" / "server" / "app.py").is_file()
