"""gRPC unary load from nghttp2's ``h2load`` (C), to check that the grpc.aio client is not
the limit: one HTTP/2 connection carrying N concurrent streams, as one grpc.aio channel with
N tasks does. h2load sees HTTP statuses only, not ``grpc-status`` trailers, so a gRPC error
answered with HTTP 200 counts as a success here: the grpc.aio passes are the ones that check.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.stats import CpuWindow, summarize

H2LOAD = shutil.which("h2load")


def framed(message: bytes) -> bytes:
    """One gRPC length-prefixed message (uncompressed)."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def command(url: str, payload_path: Path, log_path: Path, *, concurrency: int,
            duration_s: float, warmup_s: float, key: str) -> list[str]:
    assert H2LOAD is not None
    args = [H2LOAD, "-c", "1", "-m", str(concurrency), "-t", "1",
            "-D", f"{round(duration_s * 1000)}ms",
            "-d", str(payload_path), "-H", "content-type: application/grpc",
            "-H", "te: trailers", f"--log-file={log_path}"]
    if warmup_s > 0:
        args.append(f"--warm-up-time={round(warmup_s * 1000)}ms")
    if key:
        args += ["-H", f"authorization: Bearer {key}"]
    return [*args, url]


def failures(output: str) -> int:
    found = re.search(r"(\d+) failed, (\d+) errored, (\d+) timeout", output)
    return sum(int(n) for n in found.groups()) if found else 0


def measure(target: str, method: str, message: bytes, *, concurrency: int, duration_s: float,
            warmup_s: float, key: str, watch: dict[str, int]) -> dict[str, Any]:
    if H2LOAD is None:
        raise SystemExit("h2load not found (Debian package nghttp2-client)")
    with tempfile.TemporaryDirectory(prefix="bench-h2load-") as tmp:
        payload, log = Path(tmp) / "request.bin", Path(tmp) / "requests.log"
        payload.write_bytes(framed(message))
        args = command(f"http://{target}{method}", payload, log, concurrency=concurrency,
                       duration_s=duration_s, warmup_s=warmup_s, key=key)
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        time.sleep(warmup_s + 0.05)  # the same window as the log: after the warm-up
        cpu = CpuWindow(watch)
        output, _ = process.communicate()
        usage = cpu.close()
        if process.returncode != 0 or not log.exists():
            raise SystemExit(f"h2load failed:\n{output[-2000:]}")
        rows = [line.split("\t") for line in log.read_text().splitlines() if line]
    latencies = [int(row[2]) / 1e6 for row in rows if row[1] == "200"]
    errors = failures(output) + sum(1 for row in rows if row[1] != "200")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = children.ru_utime + children.ru_stime
    # h2load's CPU over warm-up and window together, spread over both.
    usage["cpu_pct"]["client"] = round(100 * spent / (duration_s + warmup_s), 1)
    return {
        "summary": summarize(latencies, errors=errors, elapsed_s=duration_s).as_dict(),
        "first_error": None if not errors else output[-300:], **usage,
    }
