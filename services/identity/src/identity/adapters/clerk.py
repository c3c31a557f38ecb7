"""Clerk's webhooks: the Svix signature over the raw body."""

from __future__ import annotations

import binascii

from svix.webhooks import Webhook, WebhookVerificationError


class InvalidSignature(Exception):
    """The signature does not match the body, its timestamp is too far off, or the
    headers are malformed."""


def verify(secret: str, payload: str, *, svix_id: str, timestamp: str, signature: str) -> None:
    """Return if Clerk (who holds ``secret``) signed ``payload``; else :class:`InvalidSignature`."""
    headers = {"svix-id": svix_id, "svix-timestamp": timestamp, "svix-signature": signature}
    try:
        Webhook(secret).verify(payload, headers)
    except (WebhookVerificationError, ValueError, binascii.Error) as exc:  # malformed headers too
        raise InvalidSignature(str(exc)) from exc
