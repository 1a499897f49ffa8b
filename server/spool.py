"""The ledger's spool: each usage event on local disk before its call's answer leaves.

One file per process in the spool directory, ``usage-<pid>-<random>.spool``, held under an
exclusive ``flock`` for the process's life. An event is one line (the row as a JSON array)
copied into the file through a shared memory map, without ``fsync``: the bytes are in the
kernel's page cache as soon as they are copied, so they outlive the process (SIGKILL, the
OOM killer) though not the machine, as a ``write`` would, without a system call on every
call's path. (A ``write`` there cost 4% of a gRPC call's CPU, measured: it hands the
interpreter's lock to the writer threads each time.) The file's blocks are reserved
(``posix_fallocate``) before they are mapped, so a full disk is an ``OSError`` when the
spool grows, never a SIGBUS; what follows the last line is zeros. Once the ledger has
stored every event it holds, the lines are zeroed and writing starts again at the top; a
clean shutdown removes the file.

At start-up, :func:`orphans` yields the spool files whose lock can be taken: their
processes are gone. Their events are written to the database (ids already stored are
skipped, so replaying twice is harmless) and the files removed.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

SUFFIX = ".spool"
INITIAL_BYTES = 4 << 20  # about 40,000 events; doubled while the database is away


class Spool:
    """This process's spool file, locked and mapped while it is open."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        name = f"usage-{os.getpid()}-{secrets.token_hex(4)}"
        # Made and locked under a name recovery ignores, then renamed: a process starting
        # beside this one never takes a fresh, still unlocked file for an orphan.
        staging = directory / f".{name}.new"
        self._fd = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.posix_fallocate(self._fd, 0, INITIAL_BYTES)
            self._map = mmap.mmap(self._fd, INITIAL_BYTES)
        except BaseException:
            os.close(self._fd)
            staging.unlink(missing_ok=True)
            raise
        self.path = directory / f"{name}{SUFFIX}"
        staging.rename(self.path)
        self._end = 0  # where the next line goes
        self.failed = 0  # events that could not be written (disk full, ...)

    def append(self, row: Sequence[Any]) -> None:
        """One event (a tuple of JSON values) as one line."""
        line = orjson.dumps(tuple(row), option=orjson.OPT_APPEND_NEWLINE)
        end = self._end + len(line)
        if end > len(self._map):
            try:
                self._grow(end)
            except OSError:
                # The event is still held in memory; only a crash before its flush loses it.
                self.failed += 1
                log.exception("could not grow the usage spool %s", self.path)
                return
        self._map[self._end:end] = line
        self._end = end

    def _grow(self, needed: int) -> None:
        size = max(needed, 2 * len(self._map))
        os.posix_fallocate(self._fd, 0, size)  # blocks first: no SIGBUS on a full disk
        self._map.resize(size)

    def truncate(self) -> None:
        """Everything spooled is in the database: start the file again."""
        self._map[:self._end] = bytes(self._end)
        self._end = 0

    def close(self, *, remove: bool) -> None:
        self._map.close()
        if remove:
            self.path.unlink(missing_ok=True)
        else:
            os.ftruncate(self._fd, self._end)  # the lines only, for whoever reads it next
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
        end = data.find(b"\0")  # a process that died leaves its file's zeros after the lines
        if end >= 0:
            data = data[:end]
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
