"""Secrets: API keys (random, stored as SHA-256) and provider credentials (Fernet at rest)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import random
import secrets
import time
from pathlib import Path

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

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


def new_id(prefix: str) -> str:
    """A unique id (not a secret), in time order like a ULID: 48 bits of milliseconds then
    64 random bits. New rows then land at the end of primary-key indexes instead of on a
    random page of them (the usage table gets thousands a second)."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{_ids.getrandbits(64):016x}"


# Seeded from the OS once per process; ids only need to be unique, not unguessable.
_ids = random.Random(secrets.randbits(128))


class CredentialBox:
    """Encrypts provider credentials with a key derived from AI1NET_SECRET_KEY."""

    def __init__(self, passphrase: str) -> None:
        kdf = Scrypt(salt=_KDF_SALT, length=32, n=2**14, r=8, p=1)
        self._fernet = Fernet(base64.urlsafe_b64encode(kdf.derive(passphrase.encode())))

    def seal(self, credentials: dict[str, str]) -> str:
        return self._fernet.encrypt(orjson.dumps(credentials)).decode()

    def open(self, token: str) -> dict[str, str]:
        try:
            value = orjson.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ValueError("stored credentials do not match AI1NET_SECRET_KEY") from exc
        return {str(k): str(v) for k, v in value.items()}


def load_passphrase(configured: str | None, *, beside: Path) -> str:
    """The configured passphrase, else one generated once and kept in ``beside`` (0600)."""
    if configured:
        return configured
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
