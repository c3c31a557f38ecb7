"""An OAuth connection flow is bound to the browser of the account that asked for it.

The calendars service keeps the flow's ``state`` (which names the tenant) and the PKCE
verifier; alone, the state would let a tenant send its provider URL to someone else and get
that person's calendar linked to its own account. So the gateway never hands out the
provider URL; ``GET /api/v1/calendars/{provider}/connect`` answers a gateway URL carrying a
signed :class:`Ticket` (state, provider, provider URL, tenant, expiry), and:

1. ``GET /api/v1/calendars/{provider}/authorize?ticket=...`` shows a page naming the Cortex
   account the calendar will be linked to and sets a *confirmation* cookie
   (``SameSite=Strict``: a page of another site cannot make the browser send it).
2. The page's "Continue" link (the same URL with ``confirmed=1``), followed with that cookie,
   sets the *binding* cookie (``SameSite=Lax``, so it comes back with the provider's redirect)
   and redirects to the provider. Without the confirmation cookie the page is shown again.
3. ``GET /api/v1/calendars/{provider}/callback`` requires the binding cookie of the ``state``
   it carries; without it (another browser, another flow's cookie, an expired one) it answers
   403 before calendars is asked, so nothing is linked and the state is not spent.

Every cookie is ``HttpOnly``, ``Secure`` when the gateway is reached over https, limited to
the provider's paths, and lives as long as the ticket (10 minutes, the life of the state).
Values are HMAC-SHA256 under ``CORTEX_GATEWAY_OAUTH_BINDING_SECRET``, which every gateway
replica shares and which production refuses to start with at its development default.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import re
import time
from dataclasses import dataclass
from typing import Final, Literal

from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError

LIFETIME_SECONDS: Final = 600
"""How long a ticket and its cookies are good: the calendars service's state lives as long."""

Purpose = Literal["confirm", "bind"]
_PROVIDER = re.compile(r"[a-z]{1,20}")


@dataclass(frozen=True)
class Ticket:
    state: str
    provider: str
    provider_url: str
    tenant_id: str
    expires_at: int


def invalid_ticket() -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID,
        "invalid_ticket",
        "The authorization link is invalid or expired; ask for a new one.",
    )


def not_bound() -> ServiceError:
    return ServiceError(
        ErrorKind.FORBIDDEN,
        "oauth_browser_mismatch",
        "This authorization was not started in this browser (or it expired): nothing was "
        "connected. Open the link from the connect request in your own browser.",
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cookie_name(purpose: Purpose, provider: str) -> str:
    """``cortex_oauth_bind_google``: one flow per provider and browser at a time."""
    return f"cortex_oauth_{purpose}_{provider}"


class OAuthBinding:
    def __init__(self, secret: str, lifetime_seconds: int = LIFETIME_SECONDS) -> None:
        if not secret:
            raise ValueError("the OAuth binding secret must not be empty")
        self._key = hashlib.sha256(b"cortex-oauth-binding\x00" + secret.encode()).digest()
        self.lifetime_seconds = lifetime_seconds

    def _mac(self, *parts: str) -> str:
        message = "\x00".join(parts).encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    # --- the ticket in the URL the connect request answers -------------------------------

    def issue_ticket(
        self, state: str, provider: str, provider_url: str, tenant_id: str, now: float | None = None
    ) -> str:
        expires = int(now if now is not None else time.time()) + self.lifetime_seconds
        body = {"s": state, "p": provider, "u": provider_url, "t": tenant_id, "e": expires}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._mac('ticket', payload)}"

    def open_ticket(self, ticket: str, provider: str, now: float | None = None) -> Ticket:
        """The ticket's content if the gateway signed it for ``provider`` and it has not
        expired; else :func:`invalid_ticket` (400)."""
        payload, _, mac = ticket.partition(".")
        if not hmac.compare_digest(mac.encode(), self._mac("ticket", payload).encode()):
            raise invalid_ticket()
        try:
            body = json.loads(_unb64(payload))
            opened = Ticket(
                state=str(body["s"]),
                provider=str(body["p"]),
                provider_url=str(body["u"]),
                tenant_id=str(body["t"]),
                expires_at=int(body["e"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise invalid_ticket() from None
        if opened.provider != provider or opened.expires_at <= (now or time.time()):
            raise invalid_ticket()
        return opened

    # --- the cookies ------------------------------------------------------------------------

    def cookie(self, purpose: Purpose, ticket: Ticket) -> str:
        """The value of the ``purpose`` cookie for the flow of ``ticket``."""
        expires = str(ticket.expires_at)
        return f"{expires}.{self._mac(purpose, ticket.provider, ticket.state, expires)}"

    def cookie_matches(
        self,
        purpose: Purpose,
        provider: str,
        state: str,
        value: str | None,
        now: float | None = None,
    ) -> bool:
        """Whether ``value`` is the unexpired ``purpose`` cookie of the flow of ``state``."""
        if not value or not _PROVIDER.fullmatch(provider):
            return False
        expires, _, mac = value.partition(".")
        if not expires.isdigit() or int(expires) <= (now or time.time()):
            return False
        expected = self._mac(purpose, provider, state, expires)
        return hmac.compare_digest(mac.encode(), expected.encode())


# --- the page that names the account -------------------------------------------------------

_PROVIDER_NAMES: Final = {"google": "Google Calendar", "outlook": "Outlook"}

PAGE_HEADERS: Final = {
    # nothing but the page's own inline style; no framing (X-Frame-Options is DENY as well)
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
        "form-action 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


def consent_page(provider: str, display_name: str, email: str, continue_url: str) -> str:
    """The page a connection link opens: whose account the calendar is being connected to."""
    service = html.escape(_PROVIDER_NAMES.get(provider, provider))
    account = html.escape(f"{display_name} ({email})" if display_name else email)
    link = html.escape(continue_url, quote=True)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Connect {service} to Cortex</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em}}
a.button{{display:inline-block;padding:.6em 1.2em;background:#1a56db;color:#fff;
border-radius:.4em;text-decoration:none}}</style></head>
<body><h1>Connect {service}</h1>
<p>This connects a {service} calendar to the Cortex account of <strong>{account}</strong>.
That account will see when you are busy (and, as its settings allow, the titles of your
events), and the bookings it takes will be written into your calendar.</p>
<p>Continue only if this is your own account. If someone sent you this link, close this page:
nothing is connected.</p>
<p><a class="button" href="{link}">Continue to {service}</a></p>
</body></html>
"""
