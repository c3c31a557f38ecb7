"""The attendee's manage link: ``/public/{slug}/bookings/{id}/manage/{token}``.

The token is derived, not stored: HMAC-SHA256 of the booking id under the gateway's
``manage_link_secret`` (the same on every replica), so the gateway can give the link in any
answer about the booking (the 201, the 202 it sends before booking answered, every public
status read) without asking anyone. Booking is told only the token's SHA-256 with the
booking request (``CreateBooking.manage_token_hash``) and stores only that: it checks a
presented token by its hash, in constant time, and never learns the secret. A new secret
invalidates every link given before.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import FastAPI

from contracts.booking_changes import manage_token_hash

__all__ = ["manage_token", "manage_token_hash", "manage_url"]


def manage_token(secret: str, booking_id: str) -> str:
    """The booking's token: 64 hex digits, unguessable without the secret."""
    return hmac.new(secret.encode(), f"manage\n{booking_id}".encode(), hashlib.sha256).hexdigest()


def secret_of(app: FastAPI) -> str:
    return str(app.state.settings.manage_link_secret.get_secret_value())


def manage_url(app: FastAPI, slug: str, booking_id: str) -> str:
    token = manage_token(secret_of(app), booking_id)
    return f"/public/{slug}/bookings/{booking_id}/manage/{token}"
