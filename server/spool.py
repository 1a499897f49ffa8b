"""The ledger's spool: each usage event on local disk before its call's answer leaves.

One file per process in the spool directory, ``usage-<pid>-<random>.spool``, held under an
exclusive ``flock`` for the process's life. An event is one line (the row as a JSON array)
written with one ``os.write`` on an ``O_APPEND`` descriptor, without ``fsync``: a write that
returned is in the kernel's page cache, so it outlives the process (SIGKILL, the OOM killer)
though not the machine. Once the ledger has stored every event it holds, the file is
truncated; a clean shutdown removes it.

At start-up, :func:`orphans` yields the spool files whose lock can be taken: their
processes are gone. Their events are written to the database (ids already stored are
skipped, so replaying twice is harmless) and the files removed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

SUFFIX = ".spool"


class Spool:
    """This process's spool file, locked while it is open."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        name = f"usage-{os.getpid()}-{secrets.token_hex(4)}"
        # Made and locked under a name recovery ignores, then renamed: a process starting
        # beside this one never takes a fresh, still unlocked file for an orphan.
        staging = directory / f".{name}.new"
        self._fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = directory / f"{name}{SUFFIX}"
        staging.rename(self.path)
        self.failed = 0  # events that could not be written (disk full, ...)

    def append(self, row: Sequence[Any]) -> None:
        """One event (a tuple of JSON values) as one line, in one ``write``."""
        try:
            os.write(self._fd, orjson.dumps(tuple(row)) + b"\n")
        except OSError:
            # The event is still held in memory; only a crash before its flush loses it.
            self.failed += 1
            log.exception("could not write a usage event to the spool %s", self.path)

    def truncate(self) -> None:
        """Everything spooled is in the database: start the file again."""
        os.ftruncate(self._fd, 0)

    def close(self, *, remove: bool) -> None:
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)


class Orphan:
    """A spool file left by a process that is gone, locked by this one until released."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def rows(self) -> list[list[Any]]:
        """The rows it holds; a line cut short (the machine stopped mid-write) is skipped."""
        with os.fdopen(os.dup(self._fd), "rb") as file:
            data = file.read()
        rows = []
        for number, line in enumerate(data.splitlines(), start=1):
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                row = None
            if isinstance(row, list):
                rows.append(row)
            else:
                log.warning("spool %s line %d is not a usage event: skipped", self.path, number)
        return rows

    def release(self, *, remove: bool) -> None:
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)


def orphans(directory: Path) -> Iterator[Orphan]:
    """Spool files in ``directory`` whose process is gone, each locked until the caller
    releases it."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # replayed and removed by a process starting beside this one
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a live process's own spool
        if os.fstat(fd).st_nlink == 0:
            os.close(fd)
            continue  # removed after its replay while this process waited to open it
        yield Orphan(path, fd)
