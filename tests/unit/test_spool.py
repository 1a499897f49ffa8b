"""The spool file: one line an event, locked while its process lives, torn lines skipped."""

from __future__ import annotations

from pathlib import Path

from ai1net.server.spool import Spool, orphans


def test_a_live_spool_is_not_an_orphan_and_a_closed_one_is(tmp_path: Path):
    spool = Spool(tmp_path)
    spool.append(("gen_1", 5, False))
    spool.append(("gen_2", 6, True))
    assert list(orphans(tmp_path)) == []  # locked by its (living) process
    spool.close(remove=False)

    with spool.path.open("ab") as file:
        file.write(b'["gen_3", 7')  # the machine stopped mid-line
    [orphan] = list(orphans(tmp_path))
    assert orphan.rows() == [["gen_1", 5, False], ["gen_2", 6, True]]
    orphan.release(remove=True)
    assert list(tmp_path.iterdir()) == []


def test_truncate_empties_the_file_and_writing_goes_on(tmp_path: Path):
    spool = Spool(tmp_path)
    spool.append(("gen_1",))
    spool.truncate()
    spool.append(("gen_2",))
    spool.close(remove=False)
    [orphan] = list(orphans(tmp_path))
    assert orphan.rows() == [["gen_2"]]
    orphan.release(remove=False)


def test_a_clean_close_removes_the_file(tmp_path: Path):
    spool = Spool(tmp_path)
    spool.append(("gen_1",))
    spool.close(remove=True)
    assert list(tmp_path.iterdir()) == []


KILLED = """
import os, signal, sys
from pathlib import Path
from ai1net.server import spool
spool.INITIAL_BYTES = 4096  # grows twice on the way
s = spool.Spool(Path(sys.argv[1]))
for n in range(100):
    s.append((f"gen_{n}", n, "x" * 40))
s.truncate()  # all stored: these must not come back
for n in range(100, 103):
    s.append((f"gen_{n}", n, "y"))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_process_leaves_exactly_its_unstored_lines(tmp_path: Path):
    import subprocess
    import sys

    process = subprocess.run([sys.executable, "-c", KILLED, str(tmp_path)], check=False)
    assert process.returncode == -9
    [orphan] = list(orphans(tmp_path))
    assert orphan.rows() == [[f"gen_{n}", n, "y"] for n in range(100, 103)]
    orphan.release(remove=True)


def test_the_spool_grows_past_its_first_reservation(tmp_path: Path, monkeypatch):
    from ai1net.server import spool as module

    monkeypatch.setattr(module, "INITIAL_BYTES", 4096)
    spool = Spool(tmp_path)
    for n in range(500):
        spool.append((f"gen_{n}", n))
    assert spool.failed == 0
    spool.close(remove=False)
    assert spool.path.stat().st_size < 500 * 20  # the lines, not the reservation
    [orphan] = list(orphans(tmp_path))
    assert orphan.rows() == [[f"gen_{n}", n] for n in range(500)]
    orphan.release(remove=True)
