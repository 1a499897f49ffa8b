"""Provider credentials at rest: several passphrases, the first encrypting, and rotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai1net.server.crypto import CredentialBox, passphrases
from ai1net.server.settings import Settings

CREDS = {"api_key": "sk-unit"}


def test_the_first_passphrase_encrypts_and_every_one_decrypts():
    old = CredentialBox("old").seal(CREDS)
    both = CredentialBox(["new", "old"])
    assert both.open(old) == CREDS
    assert CredentialBox("new").open(both.seal(CREDS)) == CREDS
    with pytest.raises(ValueError, match="AI1NET_SECRET_KEY"):
        CredentialBox("old").open(both.seal(CREDS))


def test_rotation_re_encrypts_with_the_first():
    rotated = CredentialBox(["new", "old"]).rotate(CredentialBox("old").seal(CREDS))
    assert CredentialBox("new").open(rotated) == CREDS
    with pytest.raises(ValueError, match="AI1NET_SECRET_KEY"):
        CredentialBox("other").rotate(rotated)


@pytest.mark.parametrize("value", ["new,old", " new , old ,"])
def test_comma_separated_passphrases(value: str):
    settings = Settings(database_url="postgresql://db/x", secret_key=value)
    assert passphrases(settings) == ["new", "old"]


def test_a_secret_file_is_read(tmp_path: Path):
    path = tmp_path / "secret"
    path.write_text("from-file\n")
    settings = Settings(database_url="postgresql://db/x", secret_key_file=str(path))
    assert passphrases(settings) == ["from-file"]
    missing = Settings(database_url="postgresql://db/x", secret_key_file=str(tmp_path / "no"))
    with pytest.raises(ValueError, match="AI1NET_SECRET_KEY_FILE"):
        passphrases(missing)


def test_only_sqlite_may_generate_its_own(tmp_path: Path):
    with pytest.raises(ValueError, match="AI1NET_SECRET_KEY or AI1NET_SECRET_KEY_FILE"):
        passphrases(Settings(database_url="postgresql://db/x"))
    generated = passphrases(Settings(database_url=f"sqlite:///{tmp_path / 'g.db'}"))
    assert (tmp_path / "g.db.secret").read_text().strip() == generated[0]
