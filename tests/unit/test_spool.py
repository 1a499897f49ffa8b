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
