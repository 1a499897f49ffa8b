"""``ai1net secrets rotate``: every stored provider credential re-encrypted with the first
passphrase of AI1NET_SECRET_KEY, in one transaction.

Rolling a new secret out: give every process ``NEW,OLD`` (the first encrypts, both
decrypt), run the rotation, then drop ``OLD``. The credentials themselves do not change,
so running processes have nothing to reload.
"""

from __future__ import annotations

from sqlmodel import select

from ai1net.server.crypto import CredentialBox
from ai1net.server.storage import Database
from ai1net.server.tables import ModelRow


async def rotate_credentials(*, db: Database, box: CredentialBox) -> int:
    """How many credentials were re-encrypted (deleted models' too: they still hold them)."""
    async with db.session() as session:
        query = select(ModelRow).where(ModelRow.credentials_encrypted != None)  # noqa: E711
        rows = (await session.exec(query.with_for_update())).all()
        for row in rows:
            assert row.credentials_encrypted is not None
            row.credentials_encrypted = box.rotate(row.credentials_encrypted)
            session.add(row)
        await session.commit()
    return len(rows)
