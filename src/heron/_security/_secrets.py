"""Secrets kept in the database (webhook URLs with tokens, SMTP passwords), encrypted.

``SecretBox`` encrypts with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``).
Its keys come from ``HERON_SECRET_KEY`` (one or more Fernet keys, comma-separated, the
first encrypting, all decrypting), else from the key file ``HERON_HOME/secret.key``,
created on first use with mode 0600. Several servers sharing one database must share the
key: set ``HERON_SECRET_KEY`` for them all.

Rotating the key: put a new key first (``HERON_SECRET_KEY=new,old``), call
``SecretBox.rotate(token)`` on each stored secret (or just let writes re-encrypt them), then
drop the old key. Ciphertexts carry the ``enc:v1:`` prefix, so a plain value is never
mistaken for one. API entities must never carry a decrypted secret; services return
``mask(...)`` instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from heron._errors import IntegrityError, InvalidInput
from heron._settings import Settings

PREFIX = "enc:v1:"
KEY_FILE = "secret.key"


class SecretBox:
    """Encrypts and decrypts short secrets with one or more Fernet keys."""

    def __init__(self, keys: str | list[str]) -> None:
        self._keys = [k.strip() for k in keys.split(",")] if isinstance(keys, str) else keys

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        configured = getattr(settings, "secret_key", None)
        if configured:
            return cls(configured)
        return cls(_key_file(settings.home / KEY_FILE))

    def encrypt(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        if not is_encrypted(ciphertext):
            raise InvalidInput("not an encrypted Heron secret", field="secret")
        try:
            return self._fernet.decrypt(ciphertext[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise IntegrityError(
                "a stored secret cannot be decrypted: wrong key or tampered"
            ) from None

    def rotate(self, ciphertext: str) -> str:
        """The same secret, encrypted with the first (newest) key."""
        return PREFIX + self._fernet.rotate(ciphertext[len(PREFIX) :].encode()).decode()

    @property
    def _fernet(self) -> MultiFernet:
        try:
            return MultiFernet([Fernet(k) for k in self._keys if k])
        except (ValueError, TypeError):  # never echo the key
            raise InvalidInput(
                "the secret key is not a Fernet key (32 url-safe base64-encoded bytes)",
                field="secret_key",
            ) from None


def is_encrypted(value: str) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def mask(secret: str | None) -> str | None:
    """What the API shows instead of a secret: enough to tell two apart, not to use one."""
    if not secret:
        return secret
    return "****" if len(secret) < 12 else f"{secret[:4]}****"


def _key_file(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key
