"""Verifying a Stripe webhook delivery with the SDK (computation, no I/O).

Stripe's scheme: ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">``,
checked by :func:`stripe.Webhook.construct_event`; a timestamp more than five minutes off
*in either direction* is refused (the SDK itself refuses only old ones).
"""

from __future__ import annotations

from datetime import datetime

import stripe

from billing.domain.stripe_events import InvalidPayload, InvalidSignature, StripeEvent, parse

TOLERANCE_SECONDS = 300


def signed_at(header: str) -> int:
    """The ``t=`` of a ``Stripe-Signature`` header."""
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                break
    raise InvalidSignature


def verify(payload: str, header: str, secret: str, now: datetime) -> StripeEvent:
    """The event in ``payload`` when ``header`` signs it with ``secret``, recently enough."""
    if not header or not secret:
        raise InvalidSignature
    try:
        stripe.Webhook.construct_event(payload, header, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature from exc
    except (ValueError, AttributeError, TypeError) as exc:  # signed, but not an event object
        raise InvalidPayload from exc
    if abs(now.timestamp() - signed_at(header)) > TOLERANCE_SECONDS:
        raise InvalidSignature
    return parse(payload)
