"""API keys: ``sk_live_<prefix>_<secret>``, a public lookup prefix and 256 bits of secret.

Only a SHA-256 digest of the secret is stored. A fast hash is right here: the secret is
32 random bytes, so no dictionary or brute force applies, and verification stays cheap.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from contracts.identity import API_KEY_PATTERN
from contracts.text import clean_text
from identity.domain.rules import RuleViolation

KEY_PATTERN = re.compile(API_KEY_PATTERN)
NAME_MAX = 100
_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class NewKey:
    prefix: str
    secret_hash: bytes
    full: str


def check_name(value: str) -> str:
    """A key's name, cleaned (at most 100 characters); it must keep a visible character."""
    name = clean_text(value, NAME_MAX)
    if not name:
        raise RuleViolation("invalid_name", "A key needs a name.")
    return name


def generate() -> NewKey:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(12))
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return NewKey(prefix, digest(secret), f"sk_live_{prefix}_{secret}")


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse(key: str) -> tuple[str, str] | None:
    """``(prefix, secret)`` of a well-formed key, else None."""
    match = KEY_PATTERN.fullmatch(key)
    return (match.group(1), match.group(2)) if match else None


def matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(digest(secret), stored_hash)
