"""Secrets: API keys (random, stored as SHA-256) and provider credentials (Fernet at rest)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ai1net.server.settings import Settings
from ai1net.server.storage import sqlite_path

log = logging.getLogger(__name__)

KEY_PREFIX = "ai1_"
# Fixed salt: the passphrase is the secret; the salt only separates this use of it.
_KDF_SALT = b"ai1net/provider-credentials/v1"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    # Keys carry 256 bits of entropy, so a slow password hash would add nothing.
    return hashlib.sha256(key.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class CredentialBox:
    """Encrypts provider credentials with keys derived from AI1NET_SECRET_KEY: the first
    passphrase encrypts, every one decrypts (so a new one can be rolled out before
    ``ai1net secrets rotate`` re-encrypts what is stored)."""

    def __init__(self, passphrases: str | Sequence[str]) -> None:
        phrases = [passphrases] if isinstance(passphrases, str) else list(passphrases)
        if not phrases:
            raise ValueError("AI1NET_SECRET_KEY holds no passphrase")
        self._fernet = MultiFernet([Fernet(_derive(phrase)) for phrase in phrases])

    def seal(self, credentials: dict[str, str]) -> str:
        return self._fernet.encrypt(orjson.dumps(credentials)).decode()

    def open(self, token: str) -> dict[str, str]:
        try:
            value = orjson.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ValueError("stored credentials do not match AI1NET_SECRET_KEY") from exc
        return {str(k): str(v) for k, v in value.items()}

    def rotate(self, token: str) -> str:
        """The same credentials, encrypted with the first passphrase."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored credentials do not match AI1NET_SECRET_KEY") from exc


def _derive(passphrase: str) -> bytes:
    kdf = Scrypt(salt=_KDF_SALT, length=32, n=2**14, r=8, p=1)
    return base64.urlsafe_b64encode(kdf.derive(passphrase.encode()))


def passphrases(settings: Settings) -> list[str]:
    """The passphrases of AI1NET_SECRET_KEY (comma-separated, first one encrypting) or of the
    file AI1NET_SECRET_KEY_FILE names; on SQLite without either, one generated once and kept
    beside the database. Any other database refuses to start without one: its replicas must
    share it."""
    configured = settings.secret_key or _read_secret_file(settings.secret_key_file)
    if configured:
        phrases = [phrase.strip() for phrase in configured.split(",") if phrase.strip()]
        if not phrases:
            raise ValueError("AI1NET_SECRET_KEY holds no passphrase")
        return phrases
    database = sqlite_path(settings.database_url)
    if database is None and not settings.database_url.startswith("sqlite"):
        raise ValueError("set AI1NET_SECRET_KEY or AI1NET_SECRET_KEY_FILE: on a database "
                         "other than SQLite every replica must share the secret that "
                         "encrypts provider credentials")
    beside = (database.parent / f"{database.name}.secret") if database else Path("ai1net.secret")
    return [_generated_passphrase(beside)]


def _read_secret_file(path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"AI1NET_SECRET_KEY_FILE: cannot read {path}: {exc.strerror}") from exc


def _generated_passphrase(beside: Path) -> str:
    """One generated once and kept in ``beside`` (0600)."""
    if beside.exists():
        return beside.read_text().strip()
    log.warning("AI1NET_SECRET_KEY is not set: generated one in %s; keep that file safe "
                "and back it up with the database", beside)
    passphrase = secrets.token_urlsafe(32)
    beside.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(beside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(passphrase + "\n")
    return passphrase
