"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with rotatable keys."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBox:
    """Encrypts with the first key; decrypts with any (comma-separated keys allow rotation)."""

    def __init__(self, keys: str) -> None:
        parsed = [Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()]
        if not parsed:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet(parsed)

    def seal(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def open(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken as exc:
            raise ValueError(
                "a stored secret cannot be decrypted with the configured keys"
            ) from exc
