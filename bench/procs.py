"""Starting, pinning, watching and stopping the processes of a run."""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

TASKSET = shutil.which("taskset")


def pinned(command: list[str], core: int | None) -> list[str]:
    """The command run on one core where taskset exists, unchanged otherwise."""
    if core is None or TASKSET is None:
        return command
    return [TASKSET, "-c", str(core), *command]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class Service:
    """A process started for the run, its output going to a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    spawned_at: float
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def peak_rss_mib(self) -> float | None:
        """Peak resident memory (VmHWM) of the process and its children, in MiB."""
        pids = [self.pid, *child_pids(self.pid)]
        peaks = [vm_hwm_kib(pid) for pid in pids]
        known = [kib for kib in peaks if kib is not None]
        return round(sum(known) / 1024, 1) if known else None

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{tail}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
        return self.process.returncode


def spawn(name: str, command: list[str], *, core: int | None, log_dir: Path,
          env: dict[str, str] | None = None) -> Service:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    spawned_at = time.perf_counter()
    process = subprocess.Popen(pinned(command, core), stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env)
    return Service(name, process, log_path, spawned_at, log)


def status_kib(pid: int, name: str) -> int | None:
    """One memory field of /proc/<pid>/status (VmRSS, VmHWM, ...) in KiB; None if gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return None


def vm_hwm_kib(pid: int) -> int | None:
    return status_kib(pid, "VmHWM")


def rss_mib(service: Service) -> float | None:
    """Resident memory (VmRSS) of the process and its children, in MiB."""
    known = [kib for pid in (service.pid, *child_pids(service.pid))
             if (kib := status_kib(pid, "VmRSS")) is not None]
    return round(sum(known) / 1024, 2) if known else None


class PeakRss:
    """The peak resident memory of one process over a ``with`` block: VmRSS sampled every
    ``interval`` seconds from a thread, and VmHWM where /proc lets it be reset at the start
    (so a spike between two samples is not missed)."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self._pid, self._interval = pid, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._hwm_reset = False
        self.peak_kib = 0

    def __enter__(self) -> PeakRss:
        try:
            Path(f"/proc/{self._pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            self._hwm_reset = True
        except OSError:
            pass
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._hwm_reset:
            self.peak_kib = max(self.peak_kib, vm_hwm_kib(self._pid) or 0)

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_kib = max(self.peak_kib, status_kib(self._pid, "VmRSS") or 0)

    @property
    def peak_mib(self) -> float:
        return round(self.peak_kib / 1024, 1)


def child_pids(pid: int) -> list[int]:
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return []
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def http_status(url: str, *, method: str = "GET", body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                            timeout=timeout)
    try:
        connection.request(method, parts.path or "/", body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_http(service: Service, url: str, *, timeout: float = 30.0,
              interval: float = 0.005) -> float:
    """Poll ``url`` until it answers 200; return the seconds since the process was spawned."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        service.check_alive()
        try:
            if http_status(url, timeout=1.0)[0] == 200:
                return time.perf_counter() - service.spawned_at
        except (OSError, http.client.HTTPException):  # not listening yet, or someone else is
            pass
        time.sleep(interval)
    raise TimeoutError(f"{service.name} not ready at {url} after {timeout:.0f}s")


def wait_tcp(service: Service, port: int, *, timeout: float = 30.0) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        service.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return time.perf_counter() - service.spawned_at
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"{service.name} not listening on {port} after {timeout:.0f}s")
